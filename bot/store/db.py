"""Engine and session factory for SQLite (sqlite3 on the event loop) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.store.sqlite_inline import InlineConnection

# What an unreachable, locked or overloaded database raises through SQLAlchemy: callers that must not fail (the
# gate fails closed, records are retried) catch exactly these; anything else is a bug and is not hidden.
DATABASE_FAULTS: tuple[type[BaseException], ...] = (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError)

Conn = AsyncConnection | AsyncSession  # what a query that runs on either a Core connection or an ORM session takes



def dialect_of(conn: Conn) -> str:
    """``sqlite`` or ``postgresql``: the database a connection or a session talks to."""
    return conn.dialect.name if isinstance(conn, AsyncConnection) else conn.get_bind().dialect.name


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE, INSERT or DELETE changed (its result is a cursor result; the type says Result)."""
    return cast(CursorResult[Any], result).rowcount


SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # WAL + NORMAL: a commit survives a crash of the process; only an OS crash or power cut can lose the last
    # commits (never corrupt the file). FULL would fsync on every commit: 3-4 ms per request here.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _normalised(url: str | URL) -> URL:
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def async_url(url: str | URL) -> URL:
    """The URL the app uses: aiosqlite for SQLite, psycopg 3 (async) for PostgreSQL."""
    parsed = _normalised(url)
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


def sync_url(url: str | URL) -> URL:
    """The URL Alembic uses: the standard library sqlite3, psycopg 3 (sync) for PostgreSQL."""
    parsed = _normalised(url)
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    return _normalised(url).get_backend_name() == "sqlite"


READ_ONLY = "claude_gate_read_only"  # an execution option: begin without the write lock (SQLite)


def create_engine(url: str | URL, *, pool_size: int = 5) -> AsyncEngine:
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target)
    return create_async_engine(target, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def _sqlite_engine(target: URL) -> AsyncEngine:
    """One connection per process, run on the event loop (bot/store/sqlite_inline.py says why).

    SQLite has one writer anyway, and queueing for the pool (an asyncio wait) is far cheaper than SQLite's busy
    handler. WAL, and BEGIN IMMEDIATE so a read-then-write transaction cannot interleave: pysqlite defers BEGIN,
    and SQLAlchemy documents taking over BEGIN from the "begin" event. The pool rolls back only a transaction
    that is still open when a connection comes back.
    """
    path = target.database or ":memory:"

    async def connect() -> InlineConnection:
        return InlineConnection.open(path, busy_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, pragmas=SQLITE_PRAGMAS)

    engine = create_async_engine(target, async_creator=connect, pool_size=1, max_overflow=0, pool_timeout=60,
                                 pool_reset_on_return=None)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):  # reports, exports, the App Home: no write lock
            connection.connection.dbapi_connection.run_async(lambda driver: driver.begin_deferred())
            return
        try:
            connection.connection.dbapi_connection.run_async(lambda driver: driver.begin_immediate())
        except sqlite3.Error as error:  # an event's errors are not wrapped by SQLAlchemy: wrap them like a statement's
            raise sa_exc.DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        if state.asyncio_safe and not state.transaction_was_reset and dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class Database:
    """The one database object services are built with (bot/services/base.py), made once per process by
    bot/app.py or the command line: the engine (Core statements, locks, the dialect), the ORM sessions, and the
    read-only engine and sessions.

    The read-only ones are for work that only reads (reports, exports, the App Home, the gate's first phase). On
    SQLite their transactions begin deferred, so they never take the write lock: a long `claude-gate usage` or
    export beside `serve` does not stop its writes (WAL lets one writer and many readers work at once). A write
    through them still works (SQLite takes the lock at the first write) but may meet a busy database at once:
    write through the ordinary sessions. On PostgreSQL the option changes nothing."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reader: AsyncEngine  # the engine with the read-only option
    reads: async_sessionmaker[AsyncSession]

    @classmethod
    def of(cls, engine: AsyncEngine) -> Database:
        reader = engine.execution_options(**{READ_ONLY: True})
        return cls(engine=engine, sessions=session_factory(engine), reader=reader, reads=session_factory(reader))

    @property
    def on_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"
