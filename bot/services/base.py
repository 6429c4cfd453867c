"""What a service is built with: the database, the settings, the clock and the Slack port (bot/services/ports.py).

Services that need all four subclass `Service` instead of repeating the constructor; each is built once, in
bot/app.py (or by the command line with a `Workspace` of its own)."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.services.ports import Workspace
from bot.store.clock import Clock
from bot.store.db import read_only


class Service:
    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 workspace: Workspace) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.workspace = workspace

    @cached_property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for work that only reads (reports): on SQLite they take no write lock (bot.store.db.read_only)."""
        return read_only(self.sessions)
