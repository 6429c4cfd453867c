"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


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


def create_engine(url: str | URL, *, pool_size: int = 5) -> AsyncEngine:
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        # One connection per process: SQLite has one writer anyway, and queueing for the pool (an asyncio wait)
        # is far cheaper than SQLite's busy handler, which sleeps in growing steps while another writer holds
        # the lock (50 concurrent answers took 1.4 s to get past their first write with a pool of 15).
        engine = create_async_engine(target, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                                     pool_size=1, max_overflow=0, pool_timeout=60)
        _serialise_sqlite_writers(engine)
        return engine
    return create_async_engine(target, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    """WAL + busy timeout, and BEGIN IMMEDIATE so a read-then-write transaction cannot interleave.

    pysqlite/aiosqlite defer BEGIN; SQLAlchemy documents taking over BEGIN from the "begin" event.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a crash of the process; only an OS crash or power cut can lose the
        # last commits (never corrupt the file). FULL would fsync on every commit: 3-4 ms per request here.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
