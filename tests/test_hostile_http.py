"""Hostile HTTP (issue 13 item 7): one message is answered once however many event ids it comes under."""

from __future__ import annotations

import asyncio

from bot.domain.roles import Role
from tests.conftest import Harness, eventually


async def test_one_dm_under_two_event_ids_is_answered_once(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    harness.anthropic.first_token_delay = 0.2
    ts = harness.slack.next_ts()
    harness.slack.add_message("DU1", ts, "only once", user="U1")
    event = {"type": "message", "channel_type": "im", "user": "U1", "text": "only once", "ts": ts, "channel": "DU1"}
    await asyncio.gather(harness.send_event(event), harness.send_event(event))  # two event ids, one message
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("DU1"))
    await asyncio.sleep(0.3)
    assert len(await harness.records()) == 1 and len(harness.anthropic.message_requests()) == 1
    assert harness.slack.posted_texts("DU1") == ["Echo: only once"]


async def test_a_mention_delivered_as_app_mention_and_as_message_is_answered_once(harness: Harness) -> None:
    """Slack sends both once ``message.channels`` is subscribed: whichever listener gets one, the claim holds."""
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    ts = harness.slack.next_ts()
    text = f"<@{harness.slack.bot_user_id}> once"
    harness.slack.add_message("C0001", ts, text, user="U1")
    mention = {"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C0001"}
    message = {"type": "message", "channel_type": "channel", "user": "U1", "text": text, "ts": ts,
               "channel": "C0001"}
    await asyncio.gather(harness.send_event(mention), harness.send_event(message))
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    await asyncio.sleep(0.3)
    assert len(await harness.records()) == 1 and harness.slack.posted_texts("C0001") == ["Echo: once"]
