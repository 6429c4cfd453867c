"""What the shell's verbs share: the database a verb works on, and a Slack user ID read from the words."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from bot.config import Settings, sqlite_file
from bot.domain.errors import CliError

if TYPE_CHECKING:
    from bot.store.db import Database

T = TypeVar("T")


def require_database(settings: Settings) -> None:
    """Shell commands work on the database `serve` or `db upgrade` made: a SQLite file that is not there is named
    (absolute) and not created, so a command run from another directory does not report on an empty database."""
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}: run `claude-gate db upgrade` (or `serve`) to create it, or set "
                       "DATABASE_URL (a relative SQLite path is read against the directory holding .env, else the "
                       "current one)")


def with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``work`` with the database object services are built with (bot.store.db.Database), on an upgraded
    database; the engine is disposed of after."""
    from bot.store.db import Database, create_engine
    from bot.store.migrate import upgrade_database

    require_database(settings)
    upgrade_database(settings.database_url)

    async def run() -> T:
        db = Database.of(create_engine(settings.database_url))
        try:
            return await work(db)
        finally:
            await db.engine.dispose()

    return asyncio.run(run())


def user_id(text: str) -> str:
    """A Slack user ID (`U012ABCDEF`, or a mention) from the words, else a CliError."""
    from bot.domain.commands import parse_user

    user = parse_user(text)
    if user is None:
        raise CliError(f"{text!r} is not a Slack user ID (like U012ABCDEF)")
    return user


def quiet_closed_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush at exit does not raise a second BrokenPipeError."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
