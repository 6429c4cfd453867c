"""The SQL of scheduled prompts: counting, listing, claiming an occurrence, pausing and resuming, erasing.

An occurrence is claimed with one conditional UPDATE (``next_run_at`` moves from the occurrence to the next fire
only where it still is the occurrence), so two processes never run one occurrence twice: PostgreSQL re-checks the
WHERE clause on the row it waited for, SQLite serialises writers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.spend.counters import ADVISORY_LOCK
from bot.store.db import dialect_of, rows_affected
from bot.store.models import ScheduledPrompt

ACTIVE, PAUSED = "active", "paused"
PAUSED_FOR_ROLE, PAUSED_LEFT = "role", "left"


async def lock_schedules_of(session: AsyncSession, user_id: str) -> None:
    """Serialise one person's schedule changes across processes (the count limit is exact)."""
    if dialect_of(session) == "postgresql":
        await session.execute(ADVISORY_LOCK, {"key": f"schedules:{user_id}"})


async def count_of(session: AsyncSession, user_id: str) -> int:
    return await session.scalar(select(func.count()).select_from(ScheduledPrompt)
                                .where(ScheduledPrompt.slack_user_id == user_id)) or 0


async def schedules_of(session: AsyncSession, user_id: str | None) -> list[ScheduledPrompt]:
    """A person's schedules (None: everyone's), oldest first."""
    query = select(ScheduledPrompt).order_by(ScheduledPrompt.id)
    if user_id is not None:
        query = query.where(ScheduledPrompt.slack_user_id == user_id)
    return list(await session.scalars(query))


async def due(session: AsyncSession, now: datetime) -> list[ScheduledPrompt]:
    return list(await session.scalars(select(ScheduledPrompt).where(
        ScheduledPrompt.state == ACTIVE, ScheduledPrompt.next_run_at <= now).order_by(ScheduledPrompt.next_run_at)))


async def claim_occurrence(session: AsyncSession, schedule_id: int, occurrence: datetime, following: datetime
                           ) -> bool:
    """Take the run of ``occurrence`` (moving the schedule on to ``following``): True for exactly one caller."""
    result = await session.execute(
        update(ScheduledPrompt)
        .where(ScheduledPrompt.id == schedule_id, ScheduledPrompt.state == ACTIVE,
               ScheduledPrompt.next_run_at == occurrence)
        .values(next_run_at=following, last_run_at=occurrence)
        .execution_options(synchronize_session=False))
    return rows_affected(result) == 1


async def set_outcome(session: AsyncSession, schedule_id: int, outcome: str) -> None:
    """A run's outcome; an admitted run clears the refusal notice, so the next refusal is told again."""
    values: dict[str, object] = {"last_outcome": outcome[:32]}
    if not outcome.startswith(("refused", "not_posted")):
        values["refusal_told"] = False
    await session.execute(update(ScheduledPrompt).where(ScheduledPrompt.id == schedule_id).values(**values)
                          .execution_options(synchronize_session=False))


async def claim_refusal_notice(session: AsyncSession, schedule_id: int) -> bool:
    """True once per run of refusals: the person is told at the first, not at every occurrence."""
    result = await session.execute(
        update(ScheduledPrompt).where(ScheduledPrompt.id == schedule_id, ScheduledPrompt.refusal_told.is_(False))
        .values(refusal_told=True).execution_options(synchronize_session=False))
    return rows_affected(result) == 1


async def pause(session: AsyncSession, schedule_id: int, reason: str) -> bool:
    """Active → paused (True once, for the process that made the change)."""
    result = await session.execute(
        update(ScheduledPrompt).where(ScheduledPrompt.id == schedule_id, ScheduledPrompt.state == ACTIVE)
        .values(state=PAUSED, paused_reason=reason).execution_options(synchronize_session=False))
    return rows_affected(result) == 1


async def resume(session: AsyncSession, schedule_id: int, reason: str, following: datetime) -> bool:
    """Paused for ``reason`` → active, waiting for ``following`` (occurrences while paused are not run)."""
    result = await session.execute(
        update(ScheduledPrompt).where(ScheduledPrompt.id == schedule_id, ScheduledPrompt.state == PAUSED,
                                      ScheduledPrompt.paused_reason == reason)
        .values(state=ACTIVE, paused_reason=None, next_run_at=following, refusal_told=False)
        .execution_options(synchronize_session=False))
    return rows_affected(result) == 1


async def erase_schedules_of(session: AsyncSession, user_id: str) -> int:
    """Delete every schedule of ``user_id``, prompt text and all (forget, offboard); how many."""
    result = await session.execute(delete(ScheduledPrompt).where(ScheduledPrompt.slack_user_id == user_id)
                                   .execution_options(synchronize_session=False))
    return rows_affected(result) or 0
