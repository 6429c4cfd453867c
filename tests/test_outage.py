"""The database goes away for a few seconds mid-run: users get a clear line, the process recovers by itself,
and once the database is back there is exactly one record per request sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.domain.roles import Role
from bot.store.db import sync_url
from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, Harness, eventually

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="the outage is staged on PostgreSQL (TEST_DATABASE_URL)")


class Outage:
    """Refuses new connections to the test database and cuts the open ones, then lets them back."""

    def __init__(self, database_url: str) -> None:
        url = make_url(sync_url(database_url))
        self.database = url.database
        self.admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def begin(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS false'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": self.database})

    def end(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS true'))


@pytest.fixture
def outage(database_url: str) -> Iterator[Outage]:
    assert TEST_DATABASE_URL is not None
    staged = Outage(database_url)
    try:
        yield staged
    finally:
        staged.end()
        staged.admin.dispose()


async def test_a_database_outage_loses_and_duplicates_no_record(harness: Harness, outage: Outage) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    for i in range(3):
        await harness.mention("U1", f"before {i}")
    await harness.settled_records(3, timeout=30)  # the first answer of a test process waits for `import anthropic`

    outage.begin()
    for i in range(5):
        await harness.mention("U1", f"during {i}")
    await eventually(lambda: len(harness.ephemerals_for("U1")) == 5, timeout=15)
    for ephemeral in harness.ephemerals_for("U1"):
        assert "database is unreachable" in ephemeral["text"] and "Nothing was sent to Claude" in ephemeral["text"]
    assert len(harness.anthropic.message_requests()) == 3  # fail closed: nothing reached Anthropic
    await asyncio.sleep(1)
    outage.end()

    rows = await harness.settled_records(8, timeout=60)  # the record writer writes the held records by itself
    assert [r.outcome for r in rows].count("ok") == 3
    assert [r.refusal_reason for r in rows].count("database_unavailable") == 5
    await harness.mention("U1", "after")
    rows = await harness.settled_records(9, timeout=20)
    assert len(rows) == 9 and rows[-1].outcome == "ok"
