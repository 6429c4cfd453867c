"""Slack event deduplication in the shared database: a retried event is answered once, by one process."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.clock import Clock
from bot.store.db import DATABASE_FAULTS, Database, rows_affected
from bot.store.models import ProcessedEvent

log = logging.getLogger(__name__)


# INSERT … ON CONFLICT DO NOTHING RETURNING: a claim that lost returns no row and leaves the transaction it runs in
# usable, so the gate claims the event in its own transaction. (psycopg's async cursor reports no rowcount for
# it.) Built once per dialect; both spell it the same way.
CLAIMS = {
    name: dialect.insert(ProcessedEvent)
    .values(event_id=bindparam("event_id"), received_at=bindparam("now", type_=ProcessedEvent.received_at.type))
    .on_conflict_do_nothing(index_elements=["event_id"])
    .returning(ProcessedEvent.event_id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


async def claim_in(connection: AsyncConnection, event_id: str, now: datetime) -> bool:
    """Claim ``event_id`` inside the caller's transaction: True for the first claim in any process."""
    result = await connection.execute(CLAIMS[connection.dialect.name], {"event_id": event_id[:64], "now": now})
    return result.first() is not None


async def claim_event(db: Database, clock: Clock, event_id: str) -> bool:
    """True for the first claim of ``event_id`` in any process; False for a retry or a duplicate.

    Conversations claim their event in the gate's transaction (``claim_in``); this is for the other events. If
    the database cannot be reached the event is treated as new, which beats ignoring the user.
    """
    try:
        async with db.engine.begin() as connection:  # Core: one INSERT, no unit of work
            return await claim_in(connection, event_id, clock())
    except DATABASE_FAULTS as exc:
        log.warning("could not record event %s (database unreachable: %s)", event_id, type(exc).__name__)
    return True


async def prune_events(db: Database, clock: Clock, *, keep_hours: int = 24) -> int:
    """Slack retries for minutes, not days: forget event ids older than ``keep_hours``."""
    async with db.sessions.begin() as session:
        result = await session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.received_at < clock() - timedelta(hours=keep_hours)))
    return rows_affected(result) or 0
