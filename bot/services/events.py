"""Slack event deduplication in the shared database: a retried event is answered once, by one process."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.clock import Clock
from bot.store.models import ProcessedEvent

log = logging.getLogger(__name__)


async def claim_event(sessions: async_sessionmaker[AsyncSession], clock: Clock, event_id: str) -> bool:
    """True for the first claim of ``event_id`` in any process; False for a retry or a duplicate.

    If the database cannot be reached the event is treated as new: the gate then fails closed and tells the
    user, which beats ignoring them (a Slack retry in that window may get the same one-line answer twice).
    """
    try:
        async with sessions.kw["bind"].begin() as connection:  # Core: one INSERT, no unit of work
            await connection.execute(insert(ProcessedEvent).values(event_id=event_id[:64], received_at=clock()))
    except IntegrityError:
        return False
    except (DBAPIError, OSError, TimeoutError) as exc:
        log.warning("could not record event %s (database unreachable: %s)", event_id, type(exc).__name__)
    return True


async def prune_events(sessions: async_sessionmaker[AsyncSession], clock: Clock, *, keep_hours: int = 24) -> int:
    """Slack retries for minutes, not days: forget event ids older than ``keep_hours``."""
    async with sessions.begin() as session:
        result = await session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.received_at < clock() - timedelta(hours=keep_hours)))
    return result.rowcount or 0
