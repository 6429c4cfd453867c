"""Several `claude-gate serve` processes on one PostgreSQL database keep every promise (docs/configuration.md)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from bot.services.access.roles import grant_role
from bot.store.clock import system_clock
from bot.store.db import create_engine, session_factory
from bot.store.models import RequestRecord
from tests.support.fakes.signing import command_body, event_body, new_event_id
from tests.support.harness import ON_POSTGRES, eventually
from tests.support.processes import Cluster, post_signed

pytestmark = pytest.mark.skipif(
    not ON_POSTGRES, reason="multi-process guarantees are proven on PostgreSQL: set TEST_DATABASE_URL (.ci/run does)")


async def grant(database_url: str, user: str, role: Role) -> None:
    engine = create_engine(database_url)
    async with session_factory(engine).begin() as session:
        await grant_role(session, system_clock, actor_id="test", actor_role=None, target_id=user, role=role)
    await engine.dispose()


async def records(database_url: str) -> list[RequestRecord]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        rows = list(await session.scalars(select(RequestRecord).order_by(RequestRecord.id)))
    await engine.dispose()
    return rows


def mention(slack, user: str, text: str) -> dict:  # type: ignore[no-untyped-def]
    ts = slack.next_ts()
    slack.add_message("C0001", ts, f"<@UBOT> {text}", user=user)
    return {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts, "channel": "C0001"}


async def test_rpm_is_exact_across_four_processes(cluster: Cluster, database_url: str) -> None:
    cluster.slack.add_user("U1")
    await grant(database_url, "U1", Role.USER)  # 10 requests a minute
    servers = await asyncio.to_thread(cluster.start, 4)
    async with aiohttp.ClientSession() as http:
        statuses = await asyncio.gather(*(
            post_signed(http, servers[i % 4].url, event_body(mention(cluster.slack, "U1", f"q{i}")))
            for i in range(200)))
    assert set(statuses) == {200}

    async def settled() -> list[RequestRecord] | None:
        rows = await records(database_url)
        return rows if len(rows) == 200 and all(r.outcome != "admitted" for r in rows) else None

    rows = await eventually(settled, timeout=90, interval=0.5)
    assert sum(r.admitted for r in rows) == 10
    assert sum(r.refusal_reason == "rate_limited" for r in rows) == 190
    assert len(cluster.anthropic.message_requests()) == 10


async def test_an_event_retried_to_another_process_is_answered_once(cluster: Cluster, database_url: str) -> None:
    cluster.slack.add_user("U1")
    await grant(database_url, "U1", Role.USER)
    cluster.anthropic.first_token_delay = 0.5  # still answering when the retries come
    a, b = await asyncio.to_thread(cluster.start, 2)
    body = event_body(mention(cluster.slack, "U1", "just once"), event_id=new_event_id())
    async with aiohttp.ClientSession() as http:
        assert await post_signed(http, a.url, body) == 200
        for attempt, server in ((1, b), (2, a), (3, b)):
            headers = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"}
            assert await post_signed(http, server.url, body, headers) == 200
    await eventually(lambda: cluster.slack.posted_texts("C0001"), timeout=20)
    await asyncio.sleep(1)  # give a wrong second answer the time to show up
    assert cluster.slack.posted_texts("C0001") == ["Echo: just once"]
    assert len(await records(database_url)) == 1


async def test_a_policy_change_through_one_process_applies_in_another(cluster: Cluster, database_url: str) -> None:
    for user, role in (("UADMIN", Role.ADMIN), ("U1", Role.USER)):
        cluster.slack.add_user(user)
        await grant(database_url, user, role)
    a, b = await asyncio.to_thread(cluster.start, 2)
    response_url = cluster.slack.new_response_url()
    async with aiohttp.ClientSession() as http:
        assert await post_signed(http, a.url, command_body("/claude-admin", "policy set user max_tokens 77", "UADMIN",
                                                           response_url=response_url)) == 200
        await eventually(lambda: cluster.slack.responses, timeout=20)
        assert "512 → 77" in cluster.slack.responses[0]["body"]["text"]
        assert await post_signed(http, b.url, event_body(mention(cluster.slack, "U1", "hi"))) == 200
    await eventually(lambda: cluster.anthropic.message_requests(), timeout=20)
    assert cluster.anthropic.last_body()["max_tokens"] == 77


async def test_a_key_revoked_through_one_process_is_never_used_by_another(cluster: Cluster, database_url: str) -> None:
    second = "sk-ant-api03-second-process-key-QrSt"
    cluster.extra_env["SECOND_KEY"] = second  # the secret is in every process's environment, as in production
    for user, role in (("UADMIN", Role.ADMIN), ("U1", Role.POWER)):
        cluster.slack.add_user(user)
        await grant(database_url, user, role)
    a, b = await asyncio.to_thread(cluster.start, 2)

    async def admin(text: str) -> str:
        url = cluster.slack.new_response_url()
        await post_signed(http, a.url, command_body("/claude-admin", text, "UADMIN", response_url=url))
        return await eventually(lambda: next((r["body"]["text"] for r in cluster.slack.responses if r["url"] == url),
                                             None), timeout=20)

    async with aiohttp.ClientSession() as http:
        assert "registered" in await admin("keys add second env:SECOND_KEY")
        await post_signed(http, b.url, event_body(mention(cluster.slack, "U1", "before")))
        await eventually(lambda: len(cluster.anthropic.message_requests()) == 1, timeout=20)
        assert cluster.anthropic.message_requests()[0]["api_key"] == second
        assert "revoked" in await admin("keys revoke second")
        for i in range(5):
            await post_signed(http, b.url, event_body(mention(cluster.slack, "U1", f"after {i}")))
        await eventually(lambda: len(cluster.anthropic.message_requests()) == 6, timeout=20)
    assert all(r["api_key"] != second for r in cluster.anthropic.message_requests()[1:])


async def test_two_schedulers_post_a_missed_reminder_once(cluster: Cluster, database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from bot.services.keys.registry import ensure_default_key
    from bot.services.keys.reminders import REMINDERS_JOB
    from bot.store.leases import mark_run
    from bot.store.models import ApiKey

    engine = create_engine(database_url)
    async with session_factory(engine).begin() as session:  # a due key, and a last run three days ago
        await ensure_default_key(session, system_clock, rotate_days=90)
        await session.execute(update(ApiKey).values(created_at=datetime.now(UTC) - timedelta(days=100)))
        await mark_run(session, REMINDERS_JOB, datetime.now(UTC) - timedelta(days=3))
    await engine.dispose()
    cluster.extra_env |= {"REMINDER_CHANNEL": "CREMIND", "REMINDER_CRON": "0 9 * * *"}
    await asyncio.to_thread(cluster.start, 2)

    def reminders() -> list[dict]:
        return [c for c in cluster.slack.calls_to("chat.postMessage") if c.get("channel") == "CREMIND"]

    await eventually(reminders, timeout=30)
    await asyncio.sleep(3)  # time for a second, wrong, post
    assert len(reminders()) == 1
