"""Request records: the one writer, and the statements that write them (ARCHITECTURE: one record writer).

- **Admission**: the gate inserts a request's record with ``INSERT_RECORD`` in its own transaction, because the
  record (an admission counts toward the rpm window) and the reservation in the spend counters must be atomic; it
  is the only record write that does not go through ``RecordWriter``.
- **Finish** (``RecordWriter.finish``) and **held refusals** (``RecordWriter.hold``, the records of requests
  refused while the database was unreachable) go through one queue and are group-committed: whatever is queued
  while a write is under way goes together in the next transaction (held records inserted, finished records
  updated, spend counters settled), so hundreds of answers ending at once cost a few commits, not hundreds.
- **Retry**: one policy (``WRITE_WAIT``, through tenacity), no cap: a record waiting for the database is kept until
  written, however long it is away, for as long as the process lives. A process killed meanwhile loses what it
  held; the sweep then charges the reservations of its admitted records.
- **Bound**: past ``MAX_BACKLOG`` records in memory, ChatService fails new requests closed (the database line) and
  each such refusal is no longer held one by one but counted in one aggregate record (``requests`` = how many,
  user ``AGGREGATE_USER``), written with the next batch.
- **Sweep** (``close_orphaned``, ``sweep_in_flight``): records left in flight by a process that died are closed as
  ``interrupted`` by a conditional UPDATE (docs/spend.md): those of a process whose lease lapsed, within seconds, by
  any live process; those older than an answer may take, by the scheduler leader (the backstop).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential
from tenacity.wait import wait_base

from bot.domain.decisions import Admission, Outcome, RefusalReason
from bot.domain.marks import Icon, emphasis, icon
from bot.domain.pricing import PriceTable, estimated_cost_micros
from bot.price_source import list_prices
from bot.services.ports import SlackPort
from bot.services.spend.counters import ADD_TO_COUNTER, settle_rows
from bot.store.db import DATABASE_FAULTS
from bot.store.models import ProcessLease, RequestRecord

log = logging.getLogger(__name__)

# 0.2 s, 0.4 s, 0.8 s … then every 30 s, for as long as the process lives (no attempt or time cap)
WRITE_WAIT: wait_base = wait_exponential(multiplier=0.2, max=30)
RECORDS_CLOSE_SECONDS = 10.0  # at shutdown, the queued records get this long to be written
MAX_BACKLOG = 10_000  # records waiting for the database; past this, new requests are refused and only counted
AGGREGATE_USER = "(several)"  # the user of an aggregate record: no Slack ID has parentheses

_records = cast(Table, RequestRecord.__table__)
INSERT_RECORD = insert(RequestRecord).returning(RequestRecord.id)  # the gate's admission (its own transaction)
INSERT_HELD = insert(_records)
FINISH_RECORD = update(_records).where(_records.c.id == bindparam("record_id"))
INTERRUPTED_LINE = emphasis(f"{icon(Icon.WARNING)} This answer was interrupted (Claude Gate stopped while writing it) "
                            "and is incomplete. Ask again to continue.")


@dataclass
class _Finish:
    values: dict[str, Any]  # the record's final numbers
    settle: list[dict[str, Any]]  # the spend counters it settles
    written: asyncio.Future[None]  # who waits for it


@dataclass
class _Batch:
    held: list[dict[str, Any]] = field(default_factory=list)
    finishes: list[_Finish] = field(default_factory=list)
    aggregate: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.held) + len(self.finishes)


def aggregate_values(first: dict[str, Any], count: int) -> dict[str, Any]:
    """One record standing for ``count`` requests refused past MAX_BACKLOG (their askers are not kept)."""
    return {**first, "slack_user_id": AGGREGATE_USER, "team_id": None, "role": "unknown", "model": None,
            "outcome": Outcome.REFUSED.value, "refusal_reason": RefusalReason.DATABASE_UNAVAILABLE.value,
            "surface": None, "channel_id": None, "thread_ts": None, "prompt": None, "requests": count}


class RecordWriter:
    """Writes request records that the gate's transaction does not: finishes and held refusals (module doc)."""

    def __init__(self, engine: AsyncEngine, prices: PriceTable | None = None,
                 budget_zone: ZoneInfo | None = None) -> None:
        self.engine = engine
        self.prices = prices if prices is not None else list_prices()
        self.budget_zone = budget_zone or ZoneInfo("UTC")
        self.wait: wait_base = WRITE_WAIT
        self.max_backlog = MAX_BACKLOG
        self._queue = _Batch()  # waiting for the next write
        self._writing = _Batch()  # in the write under way
        self._overflow: dict[str, Any] | None = None  # the first refusal counted past MAX_BACKLOG
        self._overflow_count = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """Records waiting to be written."""
        return len(self._queue) + len(self._writing)

    @property
    def full(self) -> bool:
        """Past the memory bound: ChatService fails new requests closed, and their refusals are only counted."""
        return self.backlog >= self.max_backlog

    def hold(self, values: dict[str, Any]) -> None:
        """Keep the record of a refused request (the database is away) until it can be written; past MAX_BACKLOG
        it is only counted, in the aggregate record."""
        if self.full:
            if self._overflow is None:
                self._overflow = values
            self._overflow_count += 1
        else:
            self._queue.held.append(values)
        self._start()

    async def finish(self, *, record_id: int, model: str, outcome: Outcome, input_tokens: int, output_tokens: int,
                     latency_ms: int, error_type: str | None = None, cache_write_tokens: int = 0,
                     cache_read_tokens: int = 0, usage_source: str | None = "anthropic",
                     admission: Admission | None = None) -> None:
        """Write the record's real numbers and return once written; with its ``admission``, the reservation in the
        spend counters it was charged to is replaced by the real cost. A cancelled caller does not cancel the
        write."""
        ran_on = admission.admitted_at.date() if admission is not None and admission.admitted_at else None
        cost = estimated_cost_micros(model, input_tokens, output_tokens, self.prices, on=ran_on,
                                     cache_write_tokens=cache_write_tokens, cache_read_tokens=cache_read_tokens)
        settle: list[dict[str, Any]] = []
        if admission is not None and admission.charged_to and admission.admitted_at is not None:
            tokens = input_tokens + output_tokens + cache_write_tokens + cache_read_tokens
            settle = settle_rows(admission.charged_to, admission.admitted_at, self.budget_zone,
                                 cost - admission.reserved_micros, tokens - admission.reserved_tokens)
        written = asyncio.get_running_loop().create_future()
        self._queue.finishes.append(_Finish({
            "record_id": record_id, "outcome": outcome.value, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "latency_ms": latency_ms, "error_type": error_type,
            "cost_micros": cost, "cache_write_tokens": cache_write_tokens, "cache_read_tokens": cache_read_tokens,
            "usage_source": usage_source,
        }, settle, written))
        self._start()
        await asyncio.shield(written)

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_queued(), name="record-writer")

    async def _write_queued(self) -> None:
        while len(self._queue) or self._overflow_count:
            self._writing, self._queue = self._queue, _Batch()
            if self._overflow_count:
                assert self._overflow is not None
                self._writing.aggregate = aggregate_values(self._overflow, self._overflow_count)
                self._overflow, self._overflow_count = None, 0
            await self._write(self._writing)  # if cancelled, close() logs the batch
            if self._writing.aggregate is not None:
                log.warning("wrote one aggregate record for %d request(s) refused while %d record(s) waited for "
                            "the database", self._writing.aggregate["requests"], self.max_backlog)
            for finished in self._writing.finishes:
                if not finished.written.done():
                    finished.written.set_result(None)
            self._writing = _Batch()

    async def _write(self, batch: _Batch) -> None:
        """One transaction for the batch, retried through any fault until written (WRITE_WAIT, no cap)."""
        retrying = AsyncRetrying(wait=self.wait, retry=retry_if_exception_type(Exception), reraise=True,
                                 before_sleep=lambda retry_state: self._failed(len(batch), retry_state))
        async for attempt in retrying:
            with attempt:
                await self._commit(batch)
        failures = retrying.statistics.get("attempt_number", 1) - 1
        if failures:
            log.info("wrote %d request record(s) after %d failed attempt(s)", len(batch), failures)

    async def _commit(self, batch: _Batch) -> None:
        async with self.engine.begin() as connection:  # Core: no unit of work
            if batch.held:
                await connection.execute(INSERT_HELD, batch.held)
            if batch.aggregate is not None:
                await connection.execute(INSERT_HELD, batch.aggregate)
            if batch.finishes:
                await connection.execute(FINISH_RECORD, [finished.values for finished in batch.finishes])
            settle = sorted((row for finished in batch.finishes for row in finished.settle),
                            key=lambda r: (r["k_scope"], r["k_period"], r["k_starts"]))  # the gate's lock order
            if settle:
                await connection.execute(ADD_TO_COUNTER, settle)

    @staticmethod
    def _failed(count: int, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("could not write %d request record(s) (attempt %d): %s", count, state.attempt_number,
                    type(exc).__name__, exc_info=exc if not isinstance(exc, DATABASE_FAULTS)
                    and state.attempt_number == 1 else None)

    async def close(self, timeout: float = RECORDS_CLOSE_SECONDS) -> None:
        """Let the queued records be written (up to ``timeout`` seconds), then stop and log what is left."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        left = [*self._writing.held, *self._queue.held,
                *(f.values for f in (*self._writing.finishes, *self._queue.finishes))]
        if left or self._overflow_count:
            log.error("shutting down with %d request record(s) unwritten (and %d refusal(s) only counted): %s",
                      len(left), self._overflow_count, left)
        for finished in (*self._writing.finishes, *self._queue.finishes):
            if not finished.written.done():
                finished.written.set_result(None)
        self._writing, self._queue, self._overflow, self._overflow_count = _Batch(), _Batch(), None, 0


# -- the sweep: nothing stays in flight (docs/spend.md) ----------------------------------------------------------------
# The process answering a record died (a crash, ``kill -9``). Two rules close its records as ``interrupted``, charged
# their reservation (the input bound and the whole ``max_tokens``: the counters already hold exactly that), usage
# source ``estimated``, with a line in the answer's thread:
# - the lease rule (``close_orphaned``): any live process, every few seconds, closes the records of a process whose
#   own lease (bot/store/leases.py: process leases) lapsed — seconds after a crash, not minutes;
# - the age rule (``sweep_in_flight``), the backstop for records without a process (admitted by an older version,
#   or where no lease is held): at start-up and every SWEEP_INTERVAL_SECONDS, by the scheduler leader, records
#   admitted longer ago than an answer may take.
# Each is one conditional update (only rows still in flight), so two sweeps or a sweep and a late finish never double
# anything; real usage arriving later (the process was only cut off from the database) overwrites the estimate: the
# finish writes unconditionally and settles the counters from the reservation, and posts no second line.


def _close_in_flight(*conditions: Any) -> Any:
    return (
        update(_records)
        .where(_records.c.outcome == Outcome.ADMITTED.value, _records.c.admitted.is_(True), *conditions)
        .values(outcome=Outcome.INTERRUPTED.value, error_type="interrupted", usage_source="estimated",
                input_tokens=func.coalesce(_records.c.input_estimate, _records.c.input_tokens),
                output_tokens=func.coalesce(_records.c.max_tokens, _records.c.output_tokens),
                cost_micros=func.coalesce(_records.c.reserved_micros, _records.c.cost_micros))
        .returning(_records.c.id, _records.c.slack_user_id, _records.c.channel_id, _records.c.thread_ts,
                   _records.c.process_id)
    )


_leases = ProcessLease.__table__
CLOSE_STALE = _close_in_flight(_records.c.created_at < bindparam("older_than", type_=_records.c.created_at.type))
# the records of every process but this one whose lease lapsed (or is gone): one statement, whoever runs it
CLOSE_ORPHANED = _close_in_flight(
    _records.c.process_id.is_not(None), _records.c.process_id != bindparam("holder"),
    ~exists().where(_leases.c.holder == _records.c.process_id,
                    _leases.c.expires_at > bindparam("now", type_=_leases.c.expires_at.type)))
# the records of the processes named (SQLite's start-up rule: processes of this host that no longer run)
CLOSE_OF_PROCESSES = _close_in_flight(_records.c.process_id.in_(bindparam("holders", expanding=True)))
IN_FLIGHT_PROCESSES = (select(_records.c.process_id).distinct()
                       .where(_records.c.outcome == Outcome.ADMITTED.value, _records.c.admitted.is_(True),
                              _records.c.process_id.is_not(None)))


@dataclass(frozen=True)
class Swept:
    record_id: int
    user_id: str
    channel_id: str | None
    thread_ts: str | None
    process_id: str | None = None


async def _closed_and_told(sessions: async_sessionmaker[AsyncSession], slack: SlackPort, statement: Any,
                           params: dict[str, Any], why: str) -> list[Swept]:
    """Run one of the closing statements above in its own transaction, then post one line in each answer's thread."""
    async with sessions.begin() as session:
        swept = [Swept(*row) for row in (await session.execute(statement, params)).all()]
    for record in swept:
        log.warning("request record %s %s: closed as interrupted, charged its reservation", record.record_id,
                    why.format(process=record.process_id))
        if record.channel_id and record.thread_ts:
            await slack.post(record.channel_id, INTERRUPTED_LINE, thread_ts=record.thread_ts)
            await slack.end_session(record.channel_id, record.thread_ts)  # never left "processing"
    return swept


async def sweep_in_flight(sessions: async_sessionmaker[AsyncSession], slack: SlackPort, *, now: datetime,
                          answer_timeout_seconds: float, margin_seconds: float) -> list[Swept]:
    """The age rule: close the records in flight longer than an answer may take, and say so in their threads."""
    bound = answer_timeout_seconds + margin_seconds
    cutoff = now - timedelta(seconds=bound)
    return await _closed_and_told(sessions, slack, CLOSE_STALE, {"older_than": cutoff},
                                  f"was still in flight after {bound:.0f} s")


async def close_orphaned(sessions: async_sessionmaker[AsyncSession], slack: SlackPort, *, holder: str,
                         now: datetime) -> list[Swept]:
    """The lease rule: close the records of every other process whose lease lapsed, and say so in their threads."""
    return await _closed_and_told(sessions, slack, CLOSE_ORPHANED, {"holder": holder, "now": now},
                                  "was left in flight by {process}, whose lease lapsed")


async def in_flight_processes(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """The processes that have records in flight."""
    async with sessions() as session:
        return list((await session.scalars(IN_FLIGHT_PROCESSES)).all())


async def close_records_of(sessions: async_sessionmaker[AsyncSession], slack: SlackPort,
                           holders: list[str]) -> list[Swept]:
    """Close the records in flight of ``holders`` (processes known to be gone), and say so in their threads."""
    if not holders:
        return []
    return await _closed_and_told(sessions, slack, CLOSE_OF_PROCESSES, {"holders": holders},
                                  "was left in flight by {process}, which no longer runs")
