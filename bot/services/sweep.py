"""Nothing stays in flight (PRODUCT §6): records admitted longer ago than an answer may take are closed.

The process answering them died (a crash, ``kill -9``) or lost the database until it gave up. The sweep —
at start-up and every SWEEP_INTERVAL_SECONDS, by the scheduler leader — closes each as ``interrupted``, charged
its reservation (its input bound and its whole ``max_tokens``: the counters already hold exactly that), usage
source ``estimated``, and says so in the answer's thread. It is a conditional update (only rows still in
flight), so two sweeps or a sweep and a late finish never double anything; real usage arriving later overwrites
the estimate (the finish writes unconditionally and settles the counters from the reservation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.decisions import Outcome
from bot.services.workspace import Workspace
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

INTERRUPTED_LINE = ("_:warning: This answer was interrupted (Claude Gate stopped while writing it) and is "
                    "incomplete. Ask again to continue._")


@dataclass(frozen=True)
class Swept:
    record_id: int
    user_id: str
    channel_id: str | None
    thread_ts: str | None


async def close_stale_records(session: AsyncSession, *, older_than: datetime) -> list[Swept]:
    """Close every record still in flight that was admitted before ``older_than``; return what was closed."""
    r = RequestRecord
    result = await session.execute(
        update(r)
        .where(r.outcome == Outcome.ADMITTED.value, r.admitted.is_(True), r.created_at < older_than)
        .values(outcome=Outcome.INTERRUPTED.value, error_type="interrupted", usage_source="estimated",
                input_tokens=func.coalesce(r.input_estimate, r.input_tokens),
                output_tokens=func.coalesce(r.max_tokens, r.output_tokens),
                cost_micros=func.coalesce(r.reserved_micros, r.cost_micros))
        .returning(r.id, r.slack_user_id, r.channel_id, r.thread_ts)
        .execution_options(synchronize_session=False))
    return [Swept(*row) for row in result.all()]


async def sweep_in_flight(sessions: async_sessionmaker[AsyncSession], workspace: Workspace, *, now: datetime,
                          answer_timeout_seconds: float, margin_seconds: float) -> list[Swept]:
    """One sweep: close the stale records, then post one line in each answer's thread."""
    cutoff = now - timedelta(seconds=answer_timeout_seconds + margin_seconds)
    async with sessions.begin() as session:
        swept = await close_stale_records(session, older_than=cutoff)
    for record in swept:
        log.warning("request record %s was still in flight after %.0f s: closed as interrupted, charged its "
                    "reservation", record.record_id, answer_timeout_seconds + margin_seconds)
        if record.channel_id and record.thread_ts:
            await workspace.post(record.channel_id, INTERRUPTED_LINE, thread_ts=record.thread_ts)
    return swept
