"""Fuzzing event payloads into the real app: malformed shapes never raise out of a listener, never change state,
and the app keeps answering well-formed events afterwards."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.roles import Role
from tests.support.fakes.signing import event_body, json_body
from tests.support.harness import Harness, eventually

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=30), st.text(alphabet="🦀ﷺ\u202e\x00\n<>@&", max_size=10))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)
EVENT_TYPES = st.sampled_from(["app_mention", "message", "app_home_opened", "assistant_thread_started",
                               "subteam_members_changed", "subteam_updated", "reaction_added"])


@st.composite
def broken_events(draw: st.DrawFn) -> dict:
    """An event of a real type whose required fields are missing, of the wrong type, or absurd."""
    event: dict = {"type": draw(EVENT_TYPES)}
    for field in ("user", "channel", "ts", "text", "thread_ts", "channel_type", "subteam_id", "subteam",
                  "assistant_thread", "tab", "added_users", "subtype", "bot_id"):
        choice = draw(st.integers(0, 3))
        if choice == 1:
            event[field] = draw(VALUES)
        elif choice == 2:
            event[field] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        event["text"] = "x" * draw(st.integers(0, 50_000))
    # never a complete, valid question from a known user: those are supposed to change state
    if isinstance(event.get("user"), str) and event.get("user", "").startswith("U0KNOWN"):
        event["user"] = 42
    return event


async def test_malformed_events_change_nothing_and_raise_nothing(harness: Harness, caplog) -> None:
    harness.slack.add_user("U0KNOWN")
    await harness.grant("U0KNOWN", Role.USER)
    before = await harness.table_snapshot()
    examples: list[dict] = []

    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(broken_events())
    def collect(event: dict) -> None:
        examples.append(event)

    collect()
    caplog.set_level(logging.ERROR, logger="bot")
    for event in examples:
        status, _ = await harness.post_signed(json_body(event_body(event)))
        allowed = (200, 400, 413, 404) if event["type"] == "reaction_added" else (200, 400, 413)  # not subscribed
        assert status in allowed, (status, event)
    await harness.mention("U0KNOWN", "still there?")  # the app keeps working
    await harness.settled_records(1)
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("bot")]
    assert errors == [], [r.getMessage() for r in errors][:3]
    after = await harness.table_snapshot()
    # the only changes: the one valid question's record, and the event ids that were claimed
    assert len(after["request_records"]) == len(before["request_records"]) + 1
    assert after["audit_log"] == before["audit_log"] and after["role_grants"] == before["role_grants"]
    assert after["group_members"] == before["group_members"]


async def test_every_subscribed_event_is_acknowledged(harness: Harness) -> None:
    """Slack retries, and eventually disables, event subscriptions that are not answered with 200."""
    from bot.slack.manifest import bot_events

    samples = {
        "app_mention": {"type": "app_mention", "user": "U0X", "text": "<@UBOT> hi", "ts": "1.1", "channel": "C1"},
        "message.im": {"type": "message", "channel_type": "im", "user": "U0X", "text": "hi", "ts": "1.2",
                       "channel": "D1"},
        "assistant_thread_started": {"type": "assistant_thread_started", "assistant_thread": {
            "user_id": "U0X", "channel_id": "D1", "thread_ts": "1.3", "context": {}}},
        "assistant_thread_context_changed": {"type": "assistant_thread_context_changed", "assistant_thread": {
            "user_id": "U0X", "channel_id": "D1", "thread_ts": "1.3", "context": {"channel_id": "C1"}}},
        "message.channels": {"type": "message", "channel_type": "channel", "user": "U0X", "text": "hi",
                             "ts": "1.5", "thread_ts": "1.1", "channel": "C1"},
        "message.groups": {"type": "message", "channel_type": "group", "user": "U0X", "text": "hi", "ts": "1.6",
                           "thread_ts": "1.1", "channel": "G1"},
        "app_home_opened": {"type": "app_home_opened", "user": "U0X", "channel": "D1", "tab": "home"},
        "app_context_changed": {"type": "app_context_changed", "user": "U0X", "event_ts": "1.4", "context": {
            "entities": [{"type": "slack#/types/channel_id", "value": "C1", "team_id": "T0001"}]}},
        "subteam_members_changed": {"type": "subteam_members_changed", "subteam_id": "S1", "added_users": []},
        "subteam_updated": {"type": "subteam_updated", "subteam": {"id": "S1", "handle": "x"}},
        "agent_session_stopped": {"type": "agent_session_stopped", "channel": "C1", "thread_ts": "1.3", "user": "U0X",
                                  "streaming_message_ts": [], "event_ts": "1.5"},
    }
    assert set(samples) == set(bot_events("agent")) | set(bot_events("assistant"))
    for name, event in samples.items():
        status, _ = await harness.post_signed(json_body(event_body(event)))
        assert status == 200, name


@pytest.mark.parametrize("event", [
    {"type": "app_home_opened", "user": "U0\x00X", "tab": "home"},  # found by the fuzzer on PostgreSQL
    {"type": "app_home_opened", "user": "u0x; drop", "tab": "home"},
    {"type": "app_mention", "user": "U0KNOWN", "channel": "C1", "ts": "1.1", "text": "hi\x00"},
    {"type": "app_mention", "user": "U0KNOWN", "channel": "C1", "ts": "yesterday", "text": "hi"},
    {"type": "subteam_members_changed", "subteam_id": "S1", "added_users": ["U1", "\x00"]},
    {"type": "assistant_thread_started", "assistant_thread": {"user_id": "U0KNOWN", "channel_id": "D1",
                                                              "thread_ts": "1.\x003"}},
])
async def test_ids_timestamps_and_nul_bytes_slack_never_sends_are_dropped(harness: Harness, caplog,
                                                                         event: dict) -> None:
    """PostgreSQL refuses NUL in text; Slack IDs and timestamps have one shape, which is what reaches the database."""
    harness.slack.add_user("U0KNOWN")
    await harness.grant("U0KNOWN", Role.USER)
    before = await harness.table_snapshot()
    caplog.set_level(logging.WARNING, logger="bot")
    status, _ = await harness.post_signed(json_body(event_body(event)))
    assert status == 200
    assert any("dropped a malformed event" in r.getMessage() for r in caplog.records)
    assert await harness.table_snapshot() == before
    assert harness.slack.calls_to("views.publish") == [] and harness.slack.posted_texts() == []
