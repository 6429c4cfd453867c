"""Request records that could not be written (the database was unreachable) wait here and are written once it
is back, so a database hiccup never loses a record. Bounded: past the cap the oldest are logged and dropped."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)


class RecordOutbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.pending: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, values: dict[str, Any]) -> None:
        if len(self.pending) >= MAX_PENDING:
            log.error("record outbox full; dropping the oldest pending record: %s", self.pending.popleft())
        self.pending.append(values)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="record-outbox")

    async def _drain(self) -> None:
        attempt = 0
        while self.pending:
            if await self.flush():
                return
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def flush(self) -> bool:
        """Write everything pending in one transaction; False (and nothing lost) if the database is still away."""
        batch = list(self.pending)
        if not batch:
            return True
        try:
            async with self.sessions.begin() as session:
                await session.execute(insert(RequestRecord), batch)
        except Exception as exc:
            log.warning("database still unreachable; %d record(s) waiting: %s", len(batch), type(exc).__name__)
            return False
        for _ in batch:
            self.pending.popleft()
        log.info("wrote %d record(s) held while the database was unreachable", len(batch))
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.pending and not await self.flush():
            log.error("shutting down with %d unwritten record(s): %s", len(self.pending), list(self.pending))
