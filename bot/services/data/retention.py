"""Retention (docs/channels-and-data.md): what Claude Gate stored of people's words (prompt text, access-request
reasons) and where they talked (thread references, answered threads, the channel last viewed) is purged after
RETENTION_DAYS, the audit log after AUDIT_RETENTION_DAYS when set; usage numbers stay. Run daily by the scheduler
leader and by `claude-gate purge --now`; each purge writes one audit row with its counts.

Batched: each batch is its own short transaction that walks the table by primary key from where the previous one
stopped (no rescans, no lock held between batches), so a year of records purges on PostgreSQL while admissions go
on; ``on_batch`` is told after each commit (progress for the shell).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.store.clock import Clock
from bot.store.db import rows_affected
from bot.store.models import AccessRequest, AnsweredThread, AuditEntry, RequestRecord, ViewingContext

log = logging.getLogger(__name__)

BATCH_SIZE = 5_000
PURGE_ACTION = "retention.purge"

_CREATED = RequestRecord.created_at.type
_OLD_WORDS = (
    select(RequestRecord.id, RequestRecord.prompt, RequestRecord.thread_ts)
    .where(RequestRecord.id > bindparam("after"), RequestRecord.created_at < bindparam("cutoff", type_=_CREATED),
           (RequestRecord.prompt.is_not(None)) | (RequestRecord.thread_ts.is_not(None)))
    .order_by(RequestRecord.id).limit(bindparam("limit"))
    .subquery("batch")
)
# One batch of request records holding words or a thread reference: (last id, prompts in it, thread references)
NEXT_RECORD_BATCH = select(func.max(_OLD_WORDS.c.id), func.count(_OLD_WORDS.c.prompt),
                           func.count(_OLD_WORDS.c.thread_ts))
CLEAR_RECORD_BATCH = (
    update(RequestRecord)
    .where(RequestRecord.id > bindparam("after"), RequestRecord.id <= bindparam("upto"),
           RequestRecord.created_at < bindparam("cutoff", type_=_CREATED))
    .values(prompt=None, thread_ts=None)
    .execution_options(synchronize_session=False)
)
_OLD_AUDIT = (select(AuditEntry.id).where(AuditEntry.at < bindparam("cutoff", type_=AuditEntry.at.type))
              .order_by(AuditEntry.id).limit(bindparam("limit")).scalar_subquery())
DELETE_AUDIT_BATCH = delete(AuditEntry).where(AuditEntry.id.in_(_OLD_AUDIT)).execution_options(
    synchronize_session=False)
# Where conversations happened (bot/services/conversation/places.py): threads the bot answered, the channel a
# person last viewed. Small tables, one statement each.
DELETE_OLD_PLACES = {
    "answered_threads": delete(AnsweredThread).where(
        AnsweredThread.answered_at < bindparam("cutoff", type_=AnsweredThread.answered_at.type)),
    "viewing_contexts": delete(ViewingContext).where(
        ViewingContext.updated_at < bindparam("cutoff", type_=ViewingContext.updated_at.type)),
}

# The words of decided access requests (a pending one is still being read by its approvers); the request stays
CLEAR_OLD_REQUEST_REASONS = (
    update(AccessRequest)
    .where(AccessRequest.created_at < bindparam("cutoff", type_=AccessRequest.created_at.type),
           AccessRequest.reason != "", AccessRequest.status != "pending")
    .values(reason="").execution_options(synchronize_session=False)
)


@dataclass
class PurgeResult:
    cutoff: datetime
    audit_cutoff: datetime | None
    prompts: int = 0  # stored prompt texts removed (LOG_PROMPTS)
    thread_references: int = 0  # request records no longer pointing at their Slack thread
    audit_rows: int = 0
    batches: int = 0
    extra: dict[str, int] = field(default_factory=dict)  # further stores purged (access-request reasons, …)

    @property
    def counts(self) -> dict[str, int]:
        return {"prompts": self.prompts, "thread_references": self.thread_references, "audit_rows": self.audit_rows,
                **self.extra}

    def summary(self) -> str:
        kept = "audit log kept" if self.audit_cutoff is None else f"audit rows before {self.audit_cutoff:%Y-%m-%d}"
        parts = ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in self.counts.items())
        return f"purged data from before {self.cutoff:%Y-%m-%d} ({kept}): {parts}"


BatchHook = Callable[[PurgeResult], Awaitable[None]]


async def purge_expired(engine: AsyncEngine, clock: Clock, settings: Settings, *, actor: str,
                        batch_size: int = BATCH_SIZE, on_batch: BatchHook | None = None) -> PurgeResult:
    """Purge what is older than the retention periods, batch by batch, then audit the counts in one row."""
    now = clock()
    result = PurgeResult(cutoff=now - timedelta(days=settings.retention_days),
                         audit_cutoff=(now - timedelta(days=settings.audit_retention_days)
                                       if settings.audit_retention_days else None))
    after = 0
    while True:
        async with engine.begin() as connection:
            upto, prompts, threads = (await connection.execute(
                NEXT_RECORD_BATCH, {"after": after, "cutoff": result.cutoff, "limit": batch_size})).one()
            if upto is None:
                break
            await connection.execute(CLEAR_RECORD_BATCH, {"after": after, "upto": upto, "cutoff": result.cutoff})
        after = upto
        result.prompts += prompts
        result.thread_references += threads
        await _batch_done(result, on_batch)
    async with engine.begin() as connection:  # small tables: one statement each
        for name, statement in DELETE_OLD_PLACES.items():
            result.extra[name] = rows_affected(await connection.execute(statement, {"cutoff": result.cutoff})) or 0
        result.extra["access_request_reasons"] = rows_affected(await connection.execute(
            CLEAR_OLD_REQUEST_REASONS, {"cutoff": result.cutoff})) or 0
    if result.audit_cutoff is not None:
        while True:
            async with engine.begin() as connection:
                deleted = rows_affected(await connection.execute(
                    DELETE_AUDIT_BATCH, {"cutoff": result.audit_cutoff, "limit": batch_size})) or 0
            if not deleted:
                break
            result.audit_rows += deleted
            await _batch_done(result, on_batch)
    async with engine.begin() as connection:
        await connection.execute(insert(AuditEntry).values(
            at=clock(), actor=actor, action=PURGE_ACTION, target=None,
            detail={"retention_days": settings.retention_days,
                    "audit_retention_days": settings.audit_retention_days,
                    "before": result.cutoff.isoformat(), **result.counts}))
    log.info("retention: %s", result.summary())
    return result


async def _batch_done(result: PurgeResult, on_batch: BatchHook | None) -> None:
    result.batches += 1
    if on_batch is not None:
        await on_batch(result)
