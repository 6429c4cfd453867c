"""SQLite on the event loop: another process's write lock is waited for without blocking the loop, a lock held
too long is a clear database error, and a connection never goes back to the pool inside a transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.store import db
from bot.store.db import Database, create_engine, session_factory
from bot.store.migrate import upgrade_database
from bot.store.models import ProcessedEvent
from bot.store.sqlite_inline import InlineConnection
from tests.support.harness import ON_POSTGRES

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's own driver")


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "inline.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def hold_write_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    """Another process's writer (the CLI, say): takes the write lock and keeps it for ``seconds``."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


async def count_events(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(ProcessedEvent)))


async def test_a_locked_database_is_waited_for_while_the_loop_runs_on(sqlite_path: Path) -> None:
    engine = create_engine(f"sqlite:///{sqlite_path}")
    assert await count_events(engine) == 0  # connected (the file is in WAL mode from now on)
    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(sqlite_path, 0.4, locked))
    holder.start()
    await asyncio.to_thread(locked.wait)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    async with engine.begin() as connection:  # BEGIN IMMEDIATE waits for the other writer
        await connection.execute(insert(ProcessedEvent).values(event_id="Ev1", received_at=func.now()))
    waited = time.monotonic() - started
    ticking.cancel()
    holder.join()
    assert waited >= 0.3  # it did wait for the lock…
    assert ticks >= 10  # …and the loop went on meanwhile (a blocking busy handler would leave ticks at 0 or 1)
    assert await count_events(engine) == 1
    await engine.dispose()


async def test_a_lock_held_past_the_busy_timeout_is_an_operational_error(sqlite_path: Path) -> None:
    connection = InlineConnection.open(str(sqlite_path), busy_timeout=0.1, pragmas=())
    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(sqlite_path, 0.5, locked))
    holder.start()
    await asyncio.to_thread(locked.wait)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await connection.begin_immediate()
    holder.join()
    await connection.begin_immediate()  # free again
    await connection.rollback()
    await connection.close()


async def test_a_lock_held_too_long_is_a_database_fault_and_the_gate_fails_closed(
        harness_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    harness = await harness_factory(default_role="user")
    harness.slack.add_user("U1")
    path = Path(make_url(harness.runtime.settings.database_url).database or "")
    assert await count_events(harness.runtime.engine) == 0  # connected: WAL from now on
    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(path, 1.5, locked))
    holder.start()
    await asyncio.to_thread(locked.wait)
    with pytest.raises(DBAPIError, match="database is locked"):  # wrapped like any statement's error
        async with harness.runtime.engine.begin():
            pass
    await harness.mention("U1", "hello?")
    (ephemeral,) = await harness.told("U1")
    assert "database is unreachable" in ephemeral["text"]
    await asyncio.to_thread(holder.join)
    (record,) = await harness.settled_records(1, timeout=10)  # written by the record writer once the lock is free
    assert record.refusal_reason == "database_unavailable"


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(sqlite_path: Path) -> None:
    engine = create_engine(f"sqlite:///{sqlite_path}")
    connection = await engine.connect()
    await connection.execute(insert(ProcessedEvent).values(event_id="Ev-uncommitted", received_at=func.now()))
    await connection.close()  # no commit
    async with engine.begin() as again:  # the pool's one connection: BEGIN IMMEDIATE would fail inside a txn
        await again.execute(insert(ProcessedEvent).values(event_id="Ev-committed", received_at=func.now()))
    with pytest.raises(IntegrityError):  # a failed transaction rolls back and leaves the connection usable
        async with engine.begin() as failing:
            await failing.execute(insert(ProcessedEvent).values(event_id="Ev-committed", received_at=func.now()))
    async with engine.connect() as reader:
        ids = list(await reader.scalars(select(ProcessedEvent.event_id)))
    assert ids == ["Ev-committed"]
    await engine.dispose()


def other_process_writes(path: Path, event_id: str) -> None:
    """Another process (the CLI, a second writer) takes the write lock without waiting, and commits."""
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO processed_events (event_id, received_at) VALUES (?, '2026-11-30 12:00:00')",
                      (event_id,))
        other.execute("COMMIT")
    finally:
        other.close()


async def test_read_only_work_takes_no_write_lock(sqlite_path: Path) -> None:
    """Reports, exports and the App Home read through `read_only` sessions: while one of their transactions is
    open, another process still writes at once; an ordinary transaction holds the lock (BEGIN IMMEDIATE)."""
    engine = create_engine(f"sqlite:///{sqlite_path}")
    async with Database.of(engine).reads() as session:
        assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0  # its transaction is open
        other_process_writes(sqlite_path, "Ev-during-a-report")
        assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == 0  # its snapshot holds
    assert await count_events(engine) == 1
    async with session_factory(engine)() as session:
        await session.scalar(select(func.count()).select_from(ProcessedEvent))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other_process_writes(sqlite_path, "Ev-during-a-write")
    assert await count_events(engine) == 1
    await engine.dispose()
