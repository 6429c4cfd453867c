"""What a service is built with: the database (bot.store.db.Database), the settings, the clock and the Slack port
(bot/services/ports.py).

Every service subclasses `Service` and is built with keyword arguments through its one constructor (a service
that needs more, such as the gate's record writer, adds keyword arguments after these four); each is built once,
in bot/app.py (or by the command line with a `Workspace` of its own)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.commands import ParsedCommand
from bot.domain.replies import Answer
from bot.domain.requests import Requester
from bot.services.conversation.access import EffectiveRole
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database


class Service:
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.slack = slack

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.db.sessions

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for work that only reads (reports): on SQLite they take no write lock (bot.store.db.Database)."""
        return self.db.reads


@dataclass(frozen=True)
class Caller:
    """Who runs an admin subcommand: their Slack account and their role, resolved once by the dispatcher."""

    requester: Requester
    role: EffectiveRole

    @property
    def user_id(self) -> str:
        return self.requester.user_id


# One `/claude-admin` subcommand: each capability's commands.py maps subcommand names to these (``handlers()``),
# and bot/services/admin/dispatcher.py composes those tables after checking the caller's rights.
Handler = Callable[[Caller, ParsedCommand], Awaitable[Answer]]
