"""Follow-ups in a channel thread the bot answered (THREAD_FOLLOW_UPS): the people who asked there continue
without a mention; everything else that arrives through message.channels / message.groups is ignored, most of
it by its shape alone, without a Slack or database call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.domain.roles import Role
from bot.listeners.events import may_be_follow_up
from tests.support.harness import Harness, eventually


async def channel_message(harness: Harness, user: str | None, text: str, *, thread_ts: str | None,
                          channel: str = "C0001", channel_type: str = "channel", **extra: Any) -> str:
    """A message event of message.channels / message.groups, as Slack sends it."""
    ts = harness.slack.next_ts()
    harness.slack.add_message(channel, ts, text, user=user, thread_ts=thread_ts, **extra)
    event: dict[str, Any] = {"type": "message", "channel": channel, "channel_type": channel_type, "text": text,
                             "ts": ts, "event_ts": ts, **extra}
    if user:
        event["user"] = user
    if thread_ts:
        event |= {"thread_ts": thread_ts, "parent_user_id": user or "U0"}
    await harness.send_event(event)
    return ts


async def asked_and_answered(harness: Harness, user: str = "U1") -> str:
    harness.slack.add_user(user, name=user.lower())
    await harness.grant(user, Role.USER)
    root = await harness.mention(user, "What is a gate?")
    await harness.settled_records(1)
    return root


async def test_the_asker_continues_the_thread_without_a_mention(harness: Harness) -> None:
    root = await asked_and_answered(harness)
    await channel_message(harness, "U1", "And why does it matter?", thread_ts=root)
    first, second = await harness.settled_records(2)
    assert (first.surface, second.surface) == ("mention", "follow_up") and second.thread_ts == root
    assert harness.anthropic.last_body()["messages"][-1] == {"role": "user", "content": "And why does it matter?"}
    await eventually(lambda: len(harness.slack.posted_texts("C0001")) == 2)


async def test_private_channel_threads_follow_up_too(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    root = await harness.mention("U1", "first", channel="G0001")
    await harness.settled_records(1)
    await channel_message(harness, "U1", "second", thread_ts=root, channel="G0001", channel_type="group")
    _, second = await harness.settled_records(2)
    assert second.surface == "follow_up" and second.channel_id == "G0001"


async def test_others_in_the_thread_and_other_threads_are_left_alone(harness: Harness) -> None:
    root = await asked_and_answered(harness)
    harness.slack.add_user("U2")
    await harness.grant("U2", Role.USER)
    other_root = await channel_message(harness, "U1", "unrelated top-level message", thread_ts=None)
    await channel_message(harness, "U2", "I have a question too", thread_ts=root)  # did not ask the bot here
    await channel_message(harness, "U1", "a reply elsewhere", thread_ts=other_root)
    await channel_message(harness, "U1", "<@U2> what do you think?", thread_ts=root)  # for someone else
    await asyncio.sleep(0.3)
    assert len(await harness.records()) == 1 and len(harness.anthropic.message_requests()) == 1


async def test_a_mention_in_the_thread_is_answered_once_not_twice(harness: Harness) -> None:
    root = await asked_and_answered(harness)
    ts = await harness.mention("U1", "one more", thread_ts=root)
    # Slack delivers the same message as a message.channels event too, with its own event id
    await harness.send_event({"type": "message", "channel": "C0001", "channel_type": "channel", "user": "U1",
                              "text": "<@UBOT> one more", "ts": ts, "thread_ts": root, "event_ts": ts})
    await harness.settled_records(2)
    await asyncio.sleep(0.3)
    assert len(await harness.records()) == 2


async def test_follow_ups_can_be_switched_off(harness_factory) -> None:
    harness = await harness_factory(thread_follow_ups=False)
    root = await asked_and_answered(harness)
    harness.slack.reset_calls()
    await channel_message(harness, "U1", "And why?", thread_ts=root)
    await asyncio.sleep(0.3)
    assert len(await harness.records()) == 1 and harness.slack.calls == []


@pytest.mark.parametrize(("event", "expected"), [
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "channel", "text": "why?"}, True),
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "group", "text": "why?",
      "subtype": "file_share"}, True),
    ({"user": "U1", "ts": "1.0", "channel_type": "channel", "text": "top level"}, False),
    ({"user": "U1", "ts": "1.0", "thread_ts": "1.0", "channel_type": "channel", "text": "a thread root"}, False),
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "channel", "text": "<@UBOT> hi"}, False),
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "channel", "text": "<!here> hi"}, False),
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "channel", "text": "x", "bot_id": "B1"}, False),
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "channel", "text": "x",
      "subtype": "message_changed"}, False),
    ({"ts": "2.0", "thread_ts": "1.0", "channel_type": "channel", "text": "x", "subtype": "channel_join"}, False),
    ({"user": "U1", "ts": "2.0", "thread_ts": "1.0", "channel_type": "im", "text": "x"}, False),
])
def test_the_shape_alone_rules_most_messages_out(event: dict[str, Any], expected: bool) -> None:
    assert may_be_follow_up(event) is expected


async def test_messages_ruled_out_by_shape_cost_no_slack_or_database_call(harness: Harness) -> None:
    root = await asked_and_answered(harness)
    harness.slack.reset_calls()
    statements: list[str] = []
    from sqlalchemy import event

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(harness.runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        await channel_message(harness, "U1", "top-level chatter", thread_ts=None)
        await channel_message(harness, "U1", "<@U2> for you", thread_ts=root)
        await channel_message(harness, None, "someone joined", thread_ts=None, subtype="channel_join")
        await asyncio.sleep(0.2)
        assert statements == [] and harness.slack.calls == []
        await channel_message(harness, "U9", "a reply by someone who never asked", thread_ts=root)
        await eventually(lambda: len(statements) == 1)
        await asyncio.sleep(0.2)
        assert len(statements) == 1 and "answered_threads" in statements[0] and harness.slack.calls == []
    finally:
        event.remove(harness.runtime.engine.sync_engine, "before_cursor_execute", count)


async def test_retention_forgets_old_answered_threads_and_viewed_channels(harness_factory) -> None:
    from datetime import timedelta

    from bot.services.data.retention import purge_expired

    harness = await harness_factory(retention_days=30)
    root = await asked_and_answered(harness)
    await harness.view_channel("U1", "C0042")
    harness.clock.advance(timedelta(days=31).total_seconds())
    result = await purge_expired(harness.runtime.engine, harness.clock, harness.runtime.settings, actor="cli")
    assert result.extra == {"answered_threads": 1, "viewing_contexts": 1, "access_request_reasons": 0}
    await channel_message(harness, "U1", "a follow-up a month later", thread_ts=root)
    await asyncio.sleep(0.3)
    assert len(await harness.records()) == 1  # the thread is no longer one the bot remembers answering
