"""Finishing request records: tokens, estimated cost, latency, outcome. A record is never lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.domain.decisions import Admission, Outcome
from bot.domain.pricing import Price, cache_saving_micros, estimated_cost_micros
from bot.services.spend import ADD_TO_COUNTER, settle_rows
from bot.store.db import DATABASE_FAULTS
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15, 30)  # then every 30 s, for as long as the process lives
MAX_BACKLOG = 10_000  # finished records waiting for the database; past this, new requests are refused


# a record's final numbers, the spend counters it settles, and who waits for them
Pending = tuple[dict[str, Any], list[dict[str, Any]], asyncio.Future[None]]
FINISH_RECORD = update(RequestRecord.__table__).where(RequestRecord.__table__.c.id == bindparam("record_id"))


class RecordFinisher:
    """Writes the final numbers of admitted requests: tokens, estimated cost, latency, outcome.

    Group commit: the records that finish while one write is under way go together in the next transaction
    (one UPDATE each, one commit), so hundreds of answers ending at once cost a few commits, not hundreds.
    ``finish`` returns once its record is written. A database outage is retried for as long as the process
    lives; a process killed meanwhile loses them, and the sweep then charges their reservations.
    """

    def __init__(self, engine: AsyncEngine, prices: dict[str, Price] | None = None,
                 budget_zone: ZoneInfo | None = None) -> None:
        self.engine = engine
        self.prices = prices
        self.budget_zone = budget_zone or ZoneInfo("UTC")
        self._queue: list[Pending] = []  # waiting for the next write
        self._writing: list[Pending] = []  # in the write under way
        self._writer: asyncio.Task[None] | None = None

    async def finish(self, *, record_id: int, model: str, outcome: Outcome, input_tokens: int, output_tokens: int,
                     latency_ms: int, error_type: str | None = None, cache_write_tokens: int = 0,
                     cache_read_tokens: int = 0, usage_source: str | None = "anthropic",
                     admission: Admission | None = None) -> None:
        """Write the record's real numbers; with its ``admission``, the reservation in the spend counters it was
        charged to is replaced by the real cost."""
        written = asyncio.get_running_loop().create_future()
        cost = estimated_cost_micros(model, input_tokens, output_tokens, self.prices,
                                     cache_write_tokens=cache_write_tokens, cache_read_tokens=cache_read_tokens)
        settle: list[dict[str, Any]] = []
        if admission is not None and admission.charged_to and admission.admitted_at is not None:
            tokens = input_tokens + output_tokens + cache_write_tokens + cache_read_tokens
            settle = settle_rows(admission.charged_to, admission.admitted_at, self.budget_zone,
                                 cost - admission.reserved_micros, tokens - admission.reserved_tokens)
        self._queue.append(({
            "record_id": record_id, "outcome": outcome.value, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "latency_ms": latency_ms, "error_type": error_type,
            "cost_micros": cost, "cache_write_tokens": cache_write_tokens, "cache_read_tokens": cache_read_tokens,
            "usage_source": usage_source,
        }, settle, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="record-finisher")
        await asyncio.shield(written)  # a cancelled caller does not cancel the write

    async def _write_queued(self) -> None:
        while self._queue:
            self._writing, self._queue = self._queue, []
            await self._write([values for values, _, _ in self._writing],  # if cancelled, close() logs the batch
                              [row for _, settle, _ in self._writing for row in settle])
            for _, _, written in self._writing:
                if not written.done():
                    written.set_result(None)
            self._writing = []

    async def _write(self, rows: list[dict[str, Any]], settle: list[dict[str, Any]]) -> None:
        """Write, retrying through faults for as long as the process lives (a record waiting for the database is
        never dropped); returns only once written (or when cancelled: close() logs what is left)."""
        attempt = 0
        while True:
            await asyncio.sleep(0.0 if attempt == 0 else RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)])
            try:
                async with self.engine.begin() as connection:  # Core: UPDATEs by primary key, no unit of work
                    await connection.execute(FINISH_RECORD, rows)
                    if settle:  # counters in one order (scope, period, day), as the gate locks them
                        settle.sort(key=lambda r: (r["k_scope"], r["k_period"], r["k_starts"]))
                        await connection.execute(ADD_TO_COUNTER, settle)
                if attempt:
                    log.info("wrote %d request record(s) after %d failed attempt(s)", len(rows), attempt)
                return
            except Exception as exc:  # a record is not lost to any error: retried until written
                attempt += 1
                log.warning("could not finish %d request record(s) (attempt %d): %s", len(rows), attempt,
                            type(exc).__name__, exc_info=not isinstance(exc, DATABASE_FAULTS) and attempt == 1)

    @property
    def backlog(self) -> int:
        """Records waiting to be written (the gate fails closed past MAX_BACKLOG)."""
        return len(self._queue) + len(self._writing)

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
                      [values for values, _, _ in left])
        for _, _, written in left:
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
    cost_micros: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_saving_micros: int = 0  # what the cache reads saved, net of the dearer cache writes
    thumbs_up: int = 0
    thumbs_down: int = 0
    top_users: list[tuple[str, int, float]] = field(default_factory=list)  # user, requests, cost

    @property
    def cost(self) -> float:
        return self.cost_micros / 1_000_000

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


async def usage_summary(session: AsyncSession, *, since: datetime, user_id: str | None = None,
                        role: str | None = None, top: int = 5,
                        prices: Mapping[str, Price] | None = None) -> UsageSummary:
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
               func.coalesce(func.sum(RequestRecord.cost_micros), 0))
        .where(*scope, RequestRecord.admitted.is_(True))
    )).one()
    summary.requests, summary.input_tokens, summary.output_tokens = int(totals[0]), int(totals[1]), int(totals[2])
    summary.cost_micros = int(totals[3])
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
    by_model = await session.execute(
        select(RequestRecord.model, func.coalesce(func.sum(RequestRecord.cache_write_tokens), 0),
               func.coalesce(func.sum(RequestRecord.cache_read_tokens), 0))
        .where(*scope, RequestRecord.admitted.is_(True))
        .group_by(RequestRecord.model))
    for model, written, read in by_model:
        summary.cache_write_tokens += int(written)
        summary.cache_read_tokens += int(read)
        summary.cache_saving_micros += cache_saving_micros(model or "", int(written), int(read), prices)
    if user_id is None:
        cost = func.coalesce(func.sum(RequestRecord.cost_micros), 0)
        rows = await session.execute(
            select(RequestRecord.slack_user_id, func.count(), cost)
            .where(*scope, RequestRecord.admitted.is_(True))
            .group_by(RequestRecord.slack_user_id).order_by(cost.desc(), func.count().desc()).limit(top))
        summary.top_users = [(user, int(count), int(total) / 1_000_000) for user, count, total in rows]
    return summary


async def usage_by_user(session: AsyncSession, *, since: datetime) -> list[tuple[Any, ...]]:
    """One row per user since ``since``: requests, refused, errors, tokens in/out, cost, 👍, 👎, cache writes and
    reads (for CSV)."""
    admitted = RequestRecord.admitted.is_(True)
    rows = await session.execute(
        select(RequestRecord.slack_user_id,
               func.sum(case((admitted, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.REFUSED.value, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.ERROR.value, 1), else_=0)),
               func.coalesce(func.sum(RequestRecord.input_tokens), 0),
               func.coalesce(func.sum(RequestRecord.output_tokens), 0),
               func.coalesce(func.sum(RequestRecord.cost_micros), 0),
               func.sum(case((RequestRecord.feedback == "up", 1), else_=0)),
               func.sum(case((RequestRecord.feedback == "down", 1), else_=0)),
               func.coalesce(func.sum(RequestRecord.cache_write_tokens), 0),
               func.coalesce(func.sum(RequestRecord.cache_read_tokens), 0))
        .where(RequestRecord.created_at >= since)
        .group_by(RequestRecord.slack_user_id)
        .order_by(func.coalesce(func.sum(RequestRecord.cost_micros), 0).desc(), RequestRecord.slack_user_id))
    return [(user, int(req), int(ref), int(err), int(tin), int(tout), int(cost) / 1_000_000, int(up), int(down),
             int(cw), int(cr)) for user, req, ref, err, tin, tout, cost, up, down, cw, cr in rows]
