"""What a service is built with: the database, the settings, the clock and the Slack port (bot/services/workspace.py).

Services that need all four subclass `Service` instead of repeating the constructor; each is built once, in
bot/app.py (or by the command line with a `Workspace` of its own)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.services.workspace import Workspace
from bot.store.clock import Clock


class Service:
    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 workspace: Workspace) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.workspace = workspace
