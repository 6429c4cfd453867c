"""`python -m bench.stock_aiosqlite serve --port N`: `claude-gate serve` on SQLAlchemy's stock aiosqlite driver (a
thread per connection; every driver call crosses to it and back) instead of bot/store/sqlite_inline.py, with
everything else the same: one pooled connection, the same pragmas, BEGIN IMMEDIATE. The baseline
bench/sqlite_driver.py measures the inline driver against; only the engine changes, patched in before the app
builds it (the app has no setting for it).
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.store import db


def stock_engine(target: URL) -> AsyncEngine:
    engine = create_async_engine(target, connect_args={"timeout": db.SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_size=1,
                                 max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN is ours (below), as SQLAlchemy documents for pysqlite
        cursor = dbapi_connection.cursor()
        for pragma in db.SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


if __name__ == "__main__":
    db._sqlite_engine = stock_engine
    from bot.cli import main

    sys.exit(main())
