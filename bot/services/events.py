"""Slack event deduplication in the shared database: a retried event is answered once, by one process."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.clock import Clock
from bot.store.models import ProcessedEvent


async def claim_event(sessions: async_sessionmaker[AsyncSession], clock: Clock, event_id: str) -> bool:
    """True for the first claim of ``event_id`` in any process; False for a retry or a duplicate."""
    try:
        async with sessions.begin() as session:
            session.add(ProcessedEvent(event_id=event_id[:64], received_at=clock()))
    except IntegrityError:
        return False
    return True


async def prune_events(sessions: async_sessionmaker[AsyncSession], clock: Clock, *, keep_hours: int = 24) -> int:
    """Slack retries for minutes, not days: forget event ids older than ``keep_hours``."""
    async with sessions.begin() as session:
        result = await session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.received_at < clock() - timedelta(hours=keep_hours)))
    return result.rowcount or 0
