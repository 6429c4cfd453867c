"""Finishing request records: tokens, estimated cost, latency, outcome. A record is never lost."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.domain.decisions import Outcome
from bot.domain.pricing import Price, estimated_cost
from bot.store.db import DATABASE_FAULTS
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15, 30)


Pending = tuple[dict[str, Any], asyncio.Future[None]]  # a record's final numbers, and who waits for them
FINISH_RECORD = update(RequestRecord.__table__).where(RequestRecord.__table__.c.id == bindparam("record_id"))


class RecordFinisher:
    """Writes the final numbers of admitted requests: tokens, estimated cost, latency, outcome.

    Group commit: the records that finish while one write is under way go together in the next transaction
    (one UPDATE each, one commit), so hundreds of answers ending at once cost a few commits, not hundreds.
    ``finish`` returns once its record is written. A database hiccup is retried for about a minute; after that
    the record stays "in flight" and its numbers are logged, never silently lost.
    """

    def __init__(self, engine: AsyncEngine, prices: dict[str, Price] | None = None) -> None:
        self.engine = engine
        self.prices = prices
        self._queue: list[Pending] = []  # waiting for the next write
        self._writing: list[Pending] = []  # in the write under way
        self._writer: asyncio.Task[None] | None = None

    async def finish(self, *, record_id: int, model: str, outcome: Outcome, input_tokens: int, output_tokens: int,
                     latency_ms: int, error_type: str | None = None) -> None:
        written = asyncio.get_running_loop().create_future()
        self._queue.append(({
            "record_id": record_id, "outcome": outcome.value, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "latency_ms": latency_ms, "error_type": error_type,
            "estimated_cost": estimated_cost(model, input_tokens, output_tokens, self.prices),
        }, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="record-finisher")
        await asyncio.shield(written)  # a cancelled caller does not cancel the write

    async def _write_queued(self) -> None:
        while self._queue:
            self._writing, self._queue = self._queue, []
            await self._write([values for values, _ in self._writing])  # if cancelled, close() logs the batch
            for _, written in self._writing:
                if not written.done():
                    written.set_result(None)
            self._writing = []

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        """Write, retrying through faults; never raises (but for cancellation): the numbers are logged instead."""
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            await asyncio.sleep(delay)
            try:
                async with self.engine.begin() as connection:  # Core: UPDATEs by primary key, no unit of work
                    await connection.execute(FINISH_RECORD, rows)
                return
            except Exception as exc:  # a record is not lost to any error: retried, then logged
                log.warning("could not finish %d request record(s) (attempt %d): %s", len(rows), attempt + 1,
                            type(exc).__name__, exc_info=not isinstance(exc, DATABASE_FAULTS))
        log.error("%d request record(s) left as in flight after %d attempts: %s", len(rows), len(RETRY_DELAYS) + 1,
                  rows)

    async def close(self, timeout: float = 10.0) -> None:
        """Let the queued records be written (up to ``timeout`` seconds), then stop and log what is left."""
        if self._writer is not None and not self._writer.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout)
            except TimeoutError:
                self._writer.cancel()
                await asyncio.gather(self._writer, return_exceptions=True)
        left = self._writing + self._queue
        if left:
            log.error("shutting down with %d request record(s) unfinished: %s", len(left),
                      [values for values, _ in left])
        for _, written in left:
            if not written.done():
                written.set_result(None)
        self._writing, self._queue = [], []


@dataclass
class UsageSummary:
    since: datetime
    requests: int = 0  # admitted
    refusals: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    thumbs_up: int = 0
    thumbs_down: int = 0
    top_users: list[tuple[str, int, float]] = field(default_factory=list)  # user, requests, cost

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


async def usage_summary(session: AsyncSession, *, since: datetime, user_id: str | None = None,
                        role: str | None = None, top: int = 5) -> UsageSummary:
    """Requests, refusals by reason, tokens, estimated cost, feedback and top users since ``since``."""
    scope = [RequestRecord.created_at >= since]
    if user_id is not None:
        scope.append(RequestRecord.slack_user_id == user_id)
    if role is not None:
        scope.append(RequestRecord.role == role)
    summary = UsageSummary(since=since)
    totals = (await session.execute(
        select(func.count(), func.coalesce(func.sum(RequestRecord.input_tokens), 0),
               func.coalesce(func.sum(RequestRecord.output_tokens), 0),
               func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0))
        .where(*scope, RequestRecord.admitted.is_(True))
    )).one()
    summary.requests, summary.input_tokens, summary.output_tokens = int(totals[0]), int(totals[1]), int(totals[2])
    summary.cost = float(totals[3])
    by_outcome = await session.execute(
        select(RequestRecord.outcome, RequestRecord.refusal_reason, RequestRecord.feedback, func.count())
        .where(*scope).group_by(RequestRecord.outcome, RequestRecord.refusal_reason, RequestRecord.feedback))
    for outcome, reason, feedback, count in by_outcome:
        if outcome == Outcome.REFUSED.value:
            summary.refusals[reason or "unknown"] = summary.refusals.get(reason or "unknown", 0) + count
        elif outcome == Outcome.ERROR.value:
            summary.errors += count
        if feedback == "up":
            summary.thumbs_up += count
        elif feedback == "down":
            summary.thumbs_down += count
    if user_id is None:
        cost = func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0)
        rows = await session.execute(
            select(RequestRecord.slack_user_id, func.count(), cost)
            .where(*scope, RequestRecord.admitted.is_(True))
            .group_by(RequestRecord.slack_user_id).order_by(cost.desc(), func.count().desc()).limit(top))
        summary.top_users = [(user, int(count), float(total)) for user, count, total in rows]
    return summary


async def usage_by_user(session: AsyncSession, *, since: datetime) -> list[tuple[Any, ...]]:
    """One row per user since ``since``: requests, refused, errors, tokens in/out, cost, 👍, 👎 (for CSV)."""
    admitted = RequestRecord.admitted.is_(True)
    rows = await session.execute(
        select(RequestRecord.slack_user_id,
               func.sum(case((admitted, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.REFUSED.value, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.ERROR.value, 1), else_=0)),
               func.coalesce(func.sum(RequestRecord.input_tokens), 0),
               func.coalesce(func.sum(RequestRecord.output_tokens), 0),
               func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0),
               func.sum(case((RequestRecord.feedback == "up", 1), else_=0)),
               func.sum(case((RequestRecord.feedback == "down", 1), else_=0)))
        .where(RequestRecord.created_at >= since)
        .group_by(RequestRecord.slack_user_id)
        .order_by(func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0).desc(), RequestRecord.slack_user_id))
    return [(user, int(req), int(ref), int(err), int(tin), int(tout), round(float(cost), 6), int(up), int(down))
            for user, req, ref, err, tin, tout, cost, up, down in rows]
