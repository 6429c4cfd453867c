"""The HTTP surface Slack talks to: signatures, retries, threads, DMs, health."""

from __future__ import annotations

import asyncio
import time

from bot.domain.roles import Role
from tests.support.fakes.signing import event_body, json_body, new_event_id, sign
from tests.support.harness import Harness, eventually


def mention_event(user: str, text: str, ts: str = "1700000001.000100", channel: str = "C0001") -> dict:
    return {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts, "channel": channel}


async def test_bad_signature_is_rejected_and_nothing_happens(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    body = json_body(event_body(mention_event("U1", "hi")))
    status, _ = await harness.post_signed(body, secret="not-the-secret")
    assert status == 401
    status, _ = await harness.post_signed(body, timestamp=int(time.time()) - 600)  # stale: > 5 minutes
    assert status == 401
    status, _ = await harness.post_signed(body, headers={"X-Slack-Signature": "v0=" + "0" * 64})
    assert status == 401
    async with harness.http.post(f"{harness.url}/slack/events", data=body) as response:  # unsigned
        assert response.status == 401
    assert await harness.records() == []
    assert harness.anthropic.message_requests() == []


async def test_replayed_signature_with_new_timestamp_is_rejected(harness: Harness) -> None:
    body = json_body(event_body(mention_event("U1", "hi")))
    old = sign(body, "test-signing-secret-0123456789", int(time.time()) - 30)
    headers = dict(old, **{"X-Slack-Request-Timestamp": str(int(time.time()))})
    async with harness.http.post(f"{harness.url}/slack/events", data=body, headers=headers) as response:
        assert response.status == 401


async def test_url_verification_challenge(harness: Harness) -> None:
    body = json_body({"token": "t", "challenge": "c-123", "type": "url_verification"})
    status, text = await harness.post_signed(body)
    assert status == 200 and "c-123" in text


async def test_oversized_body_is_refused(harness: Harness) -> None:
    body = json_body(event_body(mention_event("U1", "x" * (1024 * 1024 + 10))))
    status, _ = await harness.post_signed(body)
    assert status == 413
    assert await harness.records() == []


async def test_retried_event_is_answered_once(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    harness.anthropic.first_token_delay = 0.3  # the answer is still streaming when the retries arrive
    event_id = new_event_id()
    ts = harness.slack.next_ts()
    harness.slack.add_message("C0001", ts, "<@UBOT> once please", user="U1")
    event = mention_event("U1", "once please", ts=ts)
    await harness.send_event(event, event_id=event_id)
    for attempt in (1, 2, 3):
        await harness.send_event(event, event_id=event_id,
                                 headers={"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"})
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    assert len(await harness.records()) == 1
    assert len(harness.anthropic.message_requests()) == 1
    assert harness.slack.posted_texts("C0001") == ["Echo: once please"]


async def test_retried_refused_event_is_refused_and_recorded_once(harness: Harness) -> None:
    harness.slack.add_user("U1")  # DEFAULT_ROLE viewer: refused
    event_id = new_event_id()
    event = mention_event("U1", "may I?", ts=harness.slack.next_ts())
    await asyncio.gather(*(harness.send_event(event, event_id=event_id, headers={"X-Slack-Retry-Num": str(attempt)})
                           for attempt in range(4)))  # the first delivery and three retries, all at once
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "role_cannot_chat"
    await harness.told("U1")
    await asyncio.sleep(0.2)
    assert len(await harness.records()) == 1 and len(harness.ephemerals_for("U1")) == 1


async def test_thread_context_is_sent_in_order_with_bot_turns_as_assistant(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    harness.slack.add_user("U2", name="ben")
    await harness.grant("U1", Role.USER)
    root = harness.slack.next_ts()
    harness.slack.add_message("C0001", root, "<@UBOT> what is 2+2?", user="U1")
    harness.slack.add_message("C0001", harness.slack.next_ts(), "4", user="UBOT", bot_id="B0001", thread_ts=root)
    harness.slack.add_message("C0001", harness.slack.next_ts(), "and in binary?", user="U2", thread_ts=root)
    harness.slack.add_message("C0001", harness.slack.next_ts(), "ignore me", bot_id="B_OTHER", thread_ts=root)
    await harness.mention("U1", "answer ben please", thread_ts=root)
    await harness.settled_records(1)
    assert harness.anthropic.last_body()["messages"] == [
        {"role": "user", "content": "ana: what is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "ben: and in binary?\n\nana: answer ben please"},
    ]
    system = harness.anthropic.last_body()["system"]
    assert "ana" not in system and "<#C0001>" in system  # the asker is named in the turns, not here (caching)
    (stream,) = harness.slack.streams.values()
    assert stream["thread_ts"] == root


async def test_follow_up_in_thread_sees_the_previous_answer(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)
    root = await harness.mention("U1", "first question")
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    await harness.mention("U1", "second question", thread_ts=root)
    await harness.settled_records(2)
    assert harness.anthropic.last_body()["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Echo: first question"},
        {"role": "user", "content": "second question"},
    ]


async def test_direct_message_is_answered_in_the_dm(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    await harness.dm("U1", "--model sonnet hello there")
    (record,) = await harness.settled_records(1)
    assert record.surface == "dm" and record.channel_id == "DU1"
    assert harness.anthropic.last_body()["model"] == harness.runtime.settings.model_sonnet
    await eventually(lambda: harness.slack.posted_texts("DU1"))
    assert harness.slack.posted_texts("DU1") == ["Echo: hello there"]


async def test_refusal_in_a_dm_is_ephemeral(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.dm("U1", "hello")
    await harness.settled_records(1)
    (ephemeral,) = await harness.told("U1")
    assert ephemeral["channel"] == "DU1"
    assert harness.slack.posted_texts() == []


async def test_health_reports_database(harness: Harness) -> None:
    """Slack beside the database (`serve` checks it at start-up: tests/processes/test_startup.py); an app nobody started
    checking is still ``connecting``."""
    async with harness.http.get(f"{harness.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json()) == {"ok": True, "database": "ok", "slack": "connecting"}


async def test_health_reports_an_unreachable_database(settings_factory, aiohttp_get) -> None:
    from bot.app import build_app
    from bot.store.db import create_engine

    runtime = build_app(settings_factory(), engine=create_engine("postgresql://nobody@127.0.0.1:9/none"))
    try:
        status, body = await aiohttp_get(runtime.web_app(), "/healthz")
    finally:
        await runtime.close()
    assert status == 503 and body == {"ok": False, "database": "unreachable", "slack": "connecting"}


async def test_many_conversations_run_at_once(harness: Harness) -> None:
    # Each model call waits 1.5 s for its first token and the mentions arrive together: if one conversation waited
    # for another's model call, at most a handful would overlap. (Sent one by one with 0.5 s, a loaded CI machine
    # acked slowly enough that only 8 overlapped.)
    harness.anthropic.first_token_delay = 1.5
    for i in range(20):
        harness.slack.add_user(f"U{i:03d}")
        await harness.grant(f"U{i:03d}", Role.USER)
    await asyncio.gather(*(harness.mention(f"U{i:03d}", f"question {i}") for i in range(20)))
    await harness.settled_records(20, timeout=30)
    assert harness.anthropic.max_in_flight >= 10  # answers overlap: nobody waits for another's model call
