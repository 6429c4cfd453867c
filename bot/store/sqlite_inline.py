"""SQLite for SQLAlchemy's async engine without a thread: each call runs on the event loop itself.

aiosqlite sends every driver call (cursor, execute, fetch, close, commit) to its own thread and back. Measured
here, that round trip costs 0.15-0.4 ms of CPU, while the statements the gate runs cost 3-20 µs: a conversation
spent more time crossing threads than it spent in SQLite. This connection has the shape SQLAlchemy's aiosqlite
dialect expects (``create_async_engine(async_creator=...)``, its documented hook) and calls ``sqlite3`` directly.

What could block the loop, and why it does not:

- waiting for the write lock: the busy timeout is 0 once connected, and ``begin_immediate`` (the only statement
  that takes the lock: every transaction starts with it) retries with ``asyncio.sleep`` until ``busy_timeout``;
- ``synchronous=NORMAL`` in WAL mode: a commit writes the WAL without fsync; only the checkpoint every 1000 pages
  syncs (a few ms);
- large reports (usage over months of records) do run on the loop; at SQLite's size of deployment (one process,
  README) they take milliseconds, and a deployment that outgrows that belongs on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

BUSY_RETRY_FIRST = 0.001  # seconds before the first retry of BEGIN IMMEDIATE; doubles up to BUSY_RETRY_MAX
BUSY_RETRY_MAX = 0.05


def _locked(error: sqlite3.OperationalError) -> bool:
    return error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class InlineCursor:
    """A ``sqlite3.Cursor`` behind the awaitable methods of an aiosqlite cursor."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """A ``sqlite3.Connection`` in autocommit mode (transactions begin explicitly) behind aiosqlite's methods."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self.busy_timeout = busy_timeout

    @classmethod
    def open(cls, path: str, *, busy_timeout: float, pragmas: Sequence[str]) -> InlineConnection:
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        for pragma in pragmas:  # at start-up the busy handler may wait: nothing else runs yet
            connection.execute(pragma).close()
        connection.execute("PRAGMA busy_timeout=0").close()
        return cls(connection, busy_timeout)

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._connection is not None and self._connection.in_transaction

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def begin_deferred(self) -> None:
        """A plain (deferred) BEGIN: a read-only transaction takes no write lock, so WAL lets other processes write
        while it reads (a report, an export)."""
        self._conn.execute("BEGIN").close()

    async def begin_immediate(self) -> None:
        """BEGIN IMMEDIATE, waiting for another process's write lock without blocking the event loop.

        Written out, not tenacity (the retry helper elsewhere): every SQLite transaction begins here, and a tenacity
        loop cost about 0.25 ms of CPU per call on the development machine even when nothing failed, against
        3-20 µs for the gate's statements."""
        deadline = time.monotonic() + self.busy_timeout
        delay = BUSY_RETRY_FIRST
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE").close()
                return
            except sqlite3.OperationalError as error:
                if not _locked(error) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, BUSY_RETRY_MAX)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], *,
                              deterministic: bool = False) -> None:
        self._conn.create_function(name, num_params, func, deterministic=deterministic)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
