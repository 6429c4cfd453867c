"""Hostile HTTP (): the signature is checked before anything is parsed; a replayed command or click
runs once; one message is answered once however many event ids it comes under."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import urlencode

import pytest

from bot.domain.roles import Role
from bot.slack.render_answers import FEEDBACK_ACTION
from tests.support.fakes.signing import command_body, new_trigger_id, sign
from tests.support.harness import SIGNING_SECRET, Harness, eventually


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


FORGED = 'x"\n2026-11-30 12:00:00 ERROR bot.app: forged line'


def warnings_and_worse(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("headers", [
    {},  # unsigned, with a current timestamp
    {"X-Slack-Signature": "v0=" + "0" * 64},  # badly signed
    {"X-Slack-Signature": "v0=é"},  # not even ASCII
    {"X-Slack-Request-Timestamp": "１７００"},  # unicode digits
    {"X-Slack-Request-Timestamp": "9" * 5000},  # a number too long to read
])
async def test_unsigned_requests_get_401_before_parsing_and_one_warning(harness: Harness, caplog, headers) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    before = await harness.table_snapshot()
    body = json.dumps({"type": FORGED, "event": {"type": FORGED, "user": "U1", "text": "hi"}, "event_id": FORGED})
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        async with harness.http.post(f"{harness.url}/slack/events", data=body.encode(), headers={
                "Content-Type": "application/json", "X-Slack-Request-Timestamp": str(int(time.time())),
                **headers}) as response:
            assert response.status == 401
    (line,) = warnings_and_worse(caplog)
    assert "forged" not in line.getMessage() and "\n" not in line.getMessage() and line.exc_info is None
    assert line.levelno == logging.WARNING
    assert await harness.table_snapshot() == before and harness.anthropic.requests == []


async def test_deeply_nested_json_is_401_unsigned_and_400_signed_never_500(harness: Harness, caplog) -> None:
    nested = "[" * 200_000 + "]" * 200_000
    with caplog.at_level(logging.DEBUG):
        async with harness.http.post(f"{harness.url}/slack/events", data=nested.encode(),
                                     headers={"Content-Type": "application/json"}) as response:
            assert response.status == 401
        status, _ = await harness.post_signed('{"a":' + nested + "}")
        assert status == 400
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text


async def test_a_replayed_slash_command_runs_once(harness: Harness) -> None:
    for user, role in (("UOWNER", Role.OWNER), ("U2", None)):
        harness.slack.add_user(user)
        if role:
            await harness.grant(user, role)
    response_url = harness.slack.new_response_url()
    body = command_body("/claude-admin", "grant <@U2> power", "UOWNER", response_url=response_url,
                        trigger_id=new_trigger_id())
    headers = sign(body, SIGNING_SECRET)  # captured once, sent three times within the 5 minutes
    for _ in range(3):
        async with harness.http.post(f"{harness.url}/slack/events", data=body.encode(), headers=headers) as response:
            assert response.status == 200
    await eventually(lambda: harness.slack.responses)
    await asyncio.sleep(0.3)
    assert len(harness.slack.responses) == 1
    assert [(a.action, a.target) for a in await harness.audit()].count(("grant", "U2")) == 1


async def test_a_replayed_button_click_is_counted_once(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "rate me")
    (record,) = await harness.settled_records(1)
    (stream,) = harness.slack.streams.values()
    payload = {"type": "block_actions", "user": {"id": "U1", "team_id": "T0001"}, "api_app_id": "A0001",
               "token": "fake-verification-token", "trigger_id": new_trigger_id(), "team": {"id": "T0001"},
               "channel": {"id": stream["channel"]}, "container": {"type": "message", "message_ts": stream["ts"]},
               "message": {"ts": stream["ts"], "thread_ts": stream["thread_ts"], "text": "x"},
               "actions": [{"type": "feedback_buttons", "action_id": FEEDBACK_ACTION, "block_id": "feedback",
                            "value": f"up:{record.id}", "action_ts": "1700000000.000100"}]}
    body = urlencode({"payload": json.dumps(payload)})
    headers = sign(body, SIGNING_SECRET)
    for _ in range(2):
        async with harness.http.post(f"{harness.url}/slack/events", data=body.encode(), headers=headers) as response:
            assert response.status == 200
    await harness.told("U1")
    await asyncio.sleep(0.3)
    assert len(harness.ephemerals_for("U1")) == 1
