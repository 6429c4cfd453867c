"""A revoked key is never used after the revoke is acknowledged, even by a request admitted before it (docs/keys.md,
): the key is re-read right before each call to Anthropic and each retry, under a lock `keys revoke`
also takes; the retry is ours (the SDK's ``max_retries=0``). Also: a dropped stream and Anthropic's error bodies."""

from __future__ import annotations

import logging

import pytest

from bot.domain.commands import ADMIN
from bot.domain.roles import Role
from tests.support.harness import API_KEY, Harness, eventually

SECOND = "sk-ant-api03-second-workspace-key-QrSt"


async def people(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("U1", Role.USER)):
        harness.slack.add_user(user)
        await harness.grant(user, role)
    return harness


async def revoke(harness: Harness, label: str) -> dict:
    answer = await harness.command("UOWNER", ADMIN, f"keys revoke {label}")
    assert f"Key {label} revoked" in answer["text"], answer["text"]
    return next(r for r in harness.slack.responses if r["body"] is answer)


async def test_a_key_revoked_while_the_thread_history_loads_is_not_used(harness: Harness) -> None:
    """Admitted with the key, then `conversations.replies` is slow, and the revoke is acknowledged meanwhile."""
    await people(harness)
    root = harness.slack.next_ts()
    harness.slack.add_message("C0001", root, "an earlier question", user="U1")
    harness.slack.delay("conversations.replies", 1.0)
    await harness.mention("U1", "and a follow-up", thread_ts=root)
    await eventually(lambda: harness.slack.calls_to("conversations.replies"))  # admitted: the history is loading
    acknowledged = await revoke(harness, "default")
    (record,) = await harness.settled_records(1)
    assert harness.anthropic.message_requests() == [], "the revoked key was sent to Anthropic"
    assert (record.outcome, record.error_type, record.key_label) == ("error", "key_revoked", "default")
    told = await eventually(lambda: harness.slack.posted_texts("C0001"))
    assert "revoked before your question reached Claude" in told[0] and acknowledged["at"] > 0


async def test_a_retry_after_529_rechecks_the_key(harness: Harness) -> None:
    """A 529, then our retry: the revoke acknowledged during the wait before the retry stops it."""
    await people(harness)
    harness.runtime.chat.retry_delays = (1.5,)
    harness.anthropic.fail_next("overloaded")
    await harness.mention("U1", "hello")
    await eventually(lambda: harness.anthropic.message_requests())  # the first try, answered 529
    acknowledged = await revoke(harness, "default")
    (record,) = await harness.settled_records(1)
    requests = harness.anthropic.message_requests()
    assert len(requests) == 1 and requests[0]["at"] < acknowledged["at"]  # no retry with the revoked key
    assert record.error_type == "key_revoked"


async def test_a_529_is_retried_by_us_once_per_delay_with_the_same_key(harness: Harness) -> None:
    await people(harness)
    harness.runtime.chat.retry_delays = (0.0, 0.0)
    harness.anthropic.fail_next("overloaded")
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok" and record.error_type is None
    assert [r["api_key"] for r in harness.anthropic.message_requests()] == [API_KEY, API_KEY]
    assert harness.slack.posted_texts("C0001") == ["Echo: hello"]
    # the SDK itself never retries: three 529s are three requests (one try, our two retries), then one line
    harness.anthropic.fail_next("overloaded", times=5)
    await harness.mention("U1", "again")
    records = await harness.settled_records(2)
    assert records[1].error_type == "overloaded"
    assert len(harness.anthropic.message_requests()) == 2 + 3


async def test_the_revoke_waits_for_a_check_under_way(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call whose key check passed is allowed to start; the revoke is acknowledged only after Anthropic has
    answered it (the check's lock is held until then), and nothing starts with the key afterwards."""
    monkeypatch.setenv("SECOND_KEY", SECOND)
    await people(harness)
    assert "registered" in (await harness.command("UOWNER", ADMIN, "keys add second env:SECOND_KEY"))["text"]
    harness.anthropic.response_delay = 1.0
    await harness.mention("U1", "slow to start")
    await eventually(lambda: harness.anthropic.message_requests())  # the call is under way, not yet answered
    acknowledged = await revoke(harness, "second")
    (first,) = harness.anthropic.message_requests()
    assert first["api_key"] == SECOND and first["answered_at"] is not None
    assert first["answered_at"] <= acknowledged["at"]  # the revoke waited for the call it let through
    harness.anthropic.response_delay = 0
    await harness.mention("U1", "after the revoke")
    records = await harness.settled_records(2)
    assert [r.key_label for r in records] == ["second", "default"]
    assert [r["api_key"] for r in harness.anthropic.message_requests()] == [SECOND, API_KEY]


async def test_a_connection_dropped_mid_stream_is_an_interruption(harness: Harness,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    await people(harness)
    harness.anthropic.reply = "one two three four five six seven eight nine ten eleven twelve"
    harness.anthropic.chunk_chars = 10
    harness.anthropic.fail_next("mid_stream_drop", deltas=2)
    with caplog.at_level(logging.INFO):
        await harness.mention("U1", "hello")
        (record,) = await harness.settled_records(1)
    assert (record.outcome, record.error_type) == ("error", "interrupted")
    text = (await eventually(lambda: harness.slack.posted_texts("C0001")))[0]
    assert text.startswith("one two three four f") and "Claude's answer was interrupted" in text
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]
    assert len(harness.anthropic.message_requests()) == 1  # the answer had begun: cut, not retried


@pytest.mark.parametrize("message", ["messages: text content blocks must be non-empty",
                                     "Error code: 400 - {'secret': 'U1 asked about the merger'}"])
async def test_anthropic_error_bodies_are_never_posted(harness: Harness, message: str) -> None:
    await people(harness)
    harness.anthropic.fail_next("invalid_request", message=message)
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    posted = " ".join(await eventually(lambda: harness.slack.posted_texts("C0001")))
    assert "Error code" not in posted and message not in posted and "invalid_request_error" not in posted
    assert posted.startswith(":warning:") and record.error_type == "invalid"
