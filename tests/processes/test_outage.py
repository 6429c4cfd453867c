"""The database goes away mid-run: users get a clear line, the process recovers by itself, and once the database
is back there is exactly one record per request sent, with its real numbers (a few seconds in-process; over a
minute through a proxy in front of two `serve` processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from bot.domain.roles import Role
from bot.store.db import create_engine as create_async_engine
from bot.store.db import session_factory, sync_url
from bot.store.models import SpendCounter
from tests.processes.test_multiprocess import grant, mention, records
from tests.support.db_proxy import DatabaseProxy
from tests.support.fakes.anthropic import count_input_tokens, count_output_tokens
from tests.support.fakes.signing import event_body
from tests.support.harness import ON_POSTGRES, TEST_DATABASE_URL, Harness, eventually
from tests.support.processes import Cluster, post_signed

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


OUTAGE_SECONDS = 120  # real time, from the cut: 2 minutes (docs/operations.md; the old finisher gave up at ~61 s)


async def spend_tokens(database_url: str) -> dict[str, int]:
    engine = create_async_engine(database_url)
    async with session_factory(engine)() as session:
        rows = await session.execute(select(SpendCounter.scope, SpendCounter.tokens)
                                     .where(SpendCounter.period == "day"))
        spent = {scope: int(tokens) for scope, tokens in rows}
    await engine.dispose()
    return spent


def question_of(body: dict) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(block.get("text", "") for block in content)


async def test_answers_ending_in_a_long_outage_keep_their_real_numbers(cluster: Cluster,
                                                                      database_url: str) -> None:
    """Six answers under way on two `serve` processes end while PostgreSQL is away (a proxy between them
    cut for longer than any retry cap the writer ever had); once it is back every record has the numbers Anthropic
    reported and its reservation settled, and the request refused meanwhile is recorded too."""
    slack, claude = cluster.slack, cluster.anthropic
    users = [f"U{i}" for i in range(6)]
    for user in [*users, "ULATE"]:
        slack.add_user(user)
        await grant(database_url, user, Role.POWER)
    proxy = DatabaseProxy(database_url)
    await proxy.restore()
    cluster.database_url = proxy.url  # the serve processes reach PostgreSQL only through the proxy
    try:
        servers = await asyncio.to_thread(cluster.start, 2)
        for server in servers:
            await eventually(server.sdk_loaded, timeout=60)
        claude.reply = "word " * 60
        claude.chunk_delay = 0.1  # each answer streams for a few seconds
        async with aiohttp.ClientSession() as http:
            for i, user in enumerate(users):
                event = event_body(mention(slack, user, f"question {i}"))
                assert await post_signed(http, servers[i % 2].url, event) == 200
            # every answer has begun in Slack (its key check and admission are behind it): cut the database
            await eventually(lambda: len(slack.calls_to("chat.startStream")) == len(users), timeout=60)
            await proxy.cut()
            cut_at = time.monotonic()
            await eventually(lambda: claude.in_flight == 0, timeout=60)  # the answers end during the outage
            assert await post_signed(http, servers[0].url, event_body(mention(slack, "ULATE", "while away"))) == 200
            await eventually(lambda: [e for e in slack.calls_to("chat.postEphemeral")
                                      if e.get("user") == "ULATE" and "database is unreachable" in e.get("text", "")],
                             timeout=30)
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
            during = await records(database_url)  # read beside the proxy: nothing could be written
            assert [r.outcome for r in during] == ["admitted"] * len(users)
            await proxy.restore()

        async def written() -> list | None:
            rows = await records(database_url)
            return rows if len(rows) == len(users) + 1 and all(r.outcome != "admitted" for r in rows) else None

        rows = await eventually(written, timeout=90, interval=0.5)
    finally:
        await proxy.close()
    bodies = {question_of(request["body"]): request["body"] for request in claude.message_requests()}
    spent = await spend_tokens(database_url)
    for i, user in enumerate(users):
        (record,) = [r for r in rows if r.slack_user_id == user]
        body = next(b for question, b in bodies.items() if f"question {i}" in question)
        assert (record.outcome, record.usage_source) == ("ok", "anthropic")
        assert record.input_tokens + record.cache_write_tokens + record.cache_read_tokens == count_input_tokens(body)
        assert record.output_tokens == count_output_tokens(claude.reply) > 0
        assert record.cost_micros > 0
        assert spent[f"user:{user}"] == (record.input_tokens + record.output_tokens + record.cache_write_tokens
                                         + record.cache_read_tokens)  # the reservation was settled
    (late,) = [r for r in rows if r.slack_user_id == "ULATE"]
    assert (late.outcome, late.refusal_reason) == ("refused", "database_unavailable")
    assert all(server.process.poll() is None for server in servers)
