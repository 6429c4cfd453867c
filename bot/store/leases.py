"""Named leases and last-run marks in `scheduler_state`, shared by every process on the database; and each
process's own lease in `process_leases`.

A lease is held by one holder until it expires; claiming is one conditional UPDATE (or the INSERT of a new
row), so two processes never both win: PostgreSQL re-checks the WHERE clause on the row it waited for,
SQLite serialises writers with BEGIN IMMEDIATE.

A process lease has no contender (only its holder writes its row, others only read it or delete it once lapsed):
renewing is an UPDATE, or the INSERT of the row if it is not there (first start, or deleted while the process was
cut off from the database). Its own table, not `scheduler_state`: a holder (host:pid:tag) can be longer than a
lease name may be, and the request records point at it by that holder.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.db import rows_affected
from bot.store.models import ProcessLease, SchedulerState


@dataclass(frozen=True)
class Lease:
    holder: str
    until: datetime


async def claim_lease(session: AsyncSession, name: str, holder: str, now: datetime, seconds: float) -> bool:
    """Take or renew lease ``name`` for ``holder`` unless someone else holds it unexpired. Call inside a transaction."""
    until = now + timedelta(seconds=seconds)
    result = await session.execute(
        update(SchedulerState)
        .where(SchedulerState.name == name,
               or_(SchedulerState.holder == holder, SchedulerState.holder.is_(None),
                   SchedulerState.expires_at.is_(None), SchedulerState.expires_at <= now))
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    if rows_affected(result):
        return True
    if await session.scalar(select(SchedulerState.name).where(SchedulerState.name == name)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(SchedulerState(name=name, holder=holder, expires_at=until))
    except IntegrityError:  # another process inserted it first
        return False
    return True


async def release_lease(session: AsyncSession, name: str, holder: str) -> None:
    await session.execute(
        update(SchedulerState).where(SchedulerState.name == name, SchedulerState.holder == holder)
        .values(holder=None, expires_at=None).execution_options(synchronize_session=False)
    )


async def current_lease(session: AsyncSession, name: str, now: datetime) -> Lease | None:
    row = await session.get(SchedulerState, name, populate_existing=True)
    if row is None or row.holder is None or row.expires_at is None or row.expires_at <= now:
        return None
    return Lease(row.holder, row.expires_at)


async def claim_once_per(session: AsyncSession, name: str, now: datetime, period: timedelta) -> bool:
    """True for at most one caller per ``period`` across processes (alert throttling)."""
    return await claim_lease(session, name, f"once:{uuid.uuid4().hex}", now, period.total_seconds())


async def last_run(session: AsyncSession, name: str) -> datetime | None:
    row = await session.get(SchedulerState, name, populate_existing=True)
    return row.last_run_at if row is not None else None


async def mark_run(session: AsyncSession, name: str, at: datetime) -> None:
    """Record a run of job ``name`` at ``at`` (never moving the mark backwards)."""
    row = await session.get(SchedulerState, name, with_for_update=True, populate_existing=True)
    if row is None:
        try:
            async with session.begin_nested():
                session.add(SchedulerState(name=name, last_run_at=at))
            return
        except IntegrityError:
            row = await session.get(SchedulerState, name, with_for_update=True, populate_existing=True)
            assert row is not None
    if row.last_run_at is None or row.last_run_at < at:
        row.last_run_at = at


async def renew_process_lease(session: AsyncSession, holder: str, now: datetime, seconds: float) -> None:
    """Take or renew this process's own lease until ``now + seconds``. Call inside a transaction."""
    until = now + timedelta(seconds=seconds)
    result = await session.execute(update(ProcessLease).where(ProcessLease.holder == holder)
                                   .values(expires_at=until).execution_options(synchronize_session=False))
    if not rows_affected(result):
        session.add(ProcessLease(holder=holder, started_at=now, expires_at=until))


async def drop_process_lease(session: AsyncSession, holder: str) -> None:
    """A clean stop: this process answers nothing more, so the lease goes at once."""
    await session.execute(delete(ProcessLease).where(ProcessLease.holder == holder))


async def drop_lapsed_process_leases(session: AsyncSession, now: datetime) -> None:
    """Forget the processes whose lease lapsed (once their records are closed); one that comes back renews anew."""
    await session.execute(delete(ProcessLease).where(ProcessLease.expires_at <= now))

