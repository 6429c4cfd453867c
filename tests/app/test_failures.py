"""Faults never crash the app, always give one clear line in the thread, and always finish the record."""

from __future__ import annotations

import pytest

from bot.domain.roles import Role
from tests.support.harness import Harness, eventually


async def ask(harness: Harness, text: str = "hello", role: Role = Role.USER) -> tuple[list[str], object]:
    harness.slack.add_user("U1")
    await harness.grant("U1", role)
    await harness.mention("U1", text)
    (record,) = await harness.settled_records(1, timeout=15)
    await eventually(lambda: harness.slack.posted_texts("C0001"), 10)
    return harness.slack.posted_texts("C0001"), record


@pytest.mark.parametrize(("kind", "times", "opts", "error_type", "phrase"), [
    ("rate_limit", 3, {"retry_after": "0"}, "rate_limited", "rate-limiting"),
    ("overloaded", 3, {}, "overloaded", "overloaded"),
    ("server", 3, {}, "server", "internal error"),
    ("auth", 1, {}, "key", "API key"),
    ("permission", 1, {}, "key", "API key"),
    ("invalid_request", 1, {"message": "bad thing"}, "invalid", "could not take this request"),
    ("drop", 3, {}, "connection", "could not reach Anthropic"),
])
async def test_anthropic_errors_become_one_clear_line(harness: Harness, kind: str, times: int, opts: dict,
                                                       error_type: str, phrase: str) -> None:
    harness.anthropic.fail_next(kind, times=times, **opts)
    texts, record = await ask(harness)
    assert len(texts) == 1 and phrase in texts[0] and texts[0].startswith(":warning:")
    assert "Traceback" not in texts[0] and "Error code" not in texts[0] and "bad thing" not in texts[0]
    assert (record.outcome, record.error_type) == ("error", error_type)


async def test_spend_limit_429_is_not_retried_forever(harness: Harness) -> None:
    harness.anthropic.fail_next("rate_limit", times=3, retry_after="0", should_retry=False,
                                message="enforced_spend_limit_reached: spend limit hit")
    texts, record = await ask(harness)
    assert record.error_type == "spend_limit" and "spend limit" in texts[0]
    assert len(harness.anthropic.message_requests()) == 1


async def test_whole_answer_timeout(harness_factory) -> None:
    harness = await harness_factory(answer_timeout_seconds=0.5)
    harness.anthropic.first_token_delay = 3
    texts, record = await ask(harness)
    assert record.error_type == "timeout" and "took too long" in texts[0]


async def test_mid_stream_error_keeps_the_partial_text(harness: Harness) -> None:
    harness.anthropic.reply = "one two three four five six seven eight nine ten eleven twelve"
    harness.anthropic.chunk_chars = 10
    harness.anthropic.fail_next("mid_stream_error", deltas=2)
    texts, record = await ask(harness)
    assert texts[0].startswith("one two three four f\n\n")  # the two deltas that arrived
    assert "interrupted" in texts[0] and "the answer above is cut off" in texts[0]
    assert record.error_type == "interrupted" and record.input_tokens > 0
    (stream,) = harness.slack.streams.values()
    assert stream["blocks"] is None  # a failed answer gets no rating buttons


async def test_context_too_long_is_retried_once_with_less_history(harness: Harness) -> None:
    harness.anthropic.fail_next("too_large")
    texts, record = await ask(harness)
    assert texts == ["Echo: hello"] and record.outcome == "ok"
    assert len(harness.anthropic.message_requests()) == 2


async def test_a_failing_conversation_does_not_affect_another(harness: Harness) -> None:
    for user in ("U1", "U2"):
        harness.slack.add_user(user)
        await harness.grant(user, Role.USER)
    harness.anthropic.fail_next("auth")
    await harness.mention("U1", "first")
    await harness.settled_records(1)
    await harness.mention("U2", "second")
    records = await harness.settled_records(2)
    assert [r.outcome for r in records] == ["error", "ok"]


async def test_streaming_not_allowed_falls_back_to_post_and_update(harness: Harness) -> None:
    harness.slack.streaming_supported = False
    harness.anthropic.reply = " ".join(f"word{i}" for i in range(60))
    texts, record = await ask(harness)
    assert texts == [harness.anthropic.reply] and record.outcome == "ok"
    assert harness.slack.calls_to("chat.postMessage")


async def test_slack_429_during_streaming_loses_no_text(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"w{i}" for i in range(200))
    harness.anthropic.chunk_chars = 50
    harness.anthropic.chunk_delay = 0.3
    harness.slack.fail_next("chat.appendStream", "ratelimited", retry_after=0, times=2)
    texts, _record = await ask(harness)
    assert texts == [harness.anthropic.reply]


async def test_long_answer_continues_in_follow_up_messages(harness: Harness) -> None:
    word = "abcdefghijklmnopqrstuvwxyz0123"  # long words: ~800 tokens of the fake for 25,000 characters
    paragraph = " ".join([word] * 18)
    harness.anthropic.reply = "\n\n".join(f"{i}: {paragraph}" for i in range(45))
    harness.anthropic.chunk_chars = 500
    texts, record = await ask(harness, role=Role.POWER)
    assert len(texts) == 3 and all(len(t) <= 11_000 for t in texts)
    assert "\n\n".join(texts) == harness.anthropic.reply
    assert record.outcome == "ok"


async def test_unreachable_database_fails_closed_with_a_clear_line(harness: Harness) -> None:
    from bot.store.db import Database, create_engine

    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    working = harness.runtime.gate.db
    harness.runtime.gate.db = Database.of(create_engine("postgresql://nobody@127.0.0.1:9/none"))  # the gate's is gone
    try:
        await harness.mention("U1", "hello")
        await eventually(lambda: harness.ephemerals_for("U1"))
    finally:
        await harness.runtime.gate.db.engine.dispose()
        harness.runtime.gate.db = working
    assert "database is unreachable" in harness.ephemerals_for("U1")[0]["text"]
    assert harness.anthropic.message_requests() == []
    (record,) = await harness.settled_records(1)  # the held record is written once the database answers
    assert record.refusal_reason == "database_unavailable"


async def test_rate_limit_tells_the_wait(harness: Harness) -> None:
    harness.anthropic.fail_next("rate_limit", retry_after="7", should_retry=False)
    texts, record = await ask(harness)
    assert texts == [":warning: Anthropic is rate-limiting this workspace right now. Try again in 7 s."]
    assert (record.outcome, record.error_type) == ("error", "rate_limited")


async def test_timeout_in_the_middle_keeps_the_partial_text(harness_factory) -> None:
    harness = await harness_factory(answer_timeout_seconds=1.0)
    harness.anthropic.reply = "first part arrives, " + "then the model stalls " * 5
    harness.anthropic.chunk_chars = 20
    harness.anthropic.chunk_delay = 0.7
    texts, record = await ask(harness)
    assert texts[0].startswith("first part arrives, ") and "took too long" in texts[0] and "cut off" in texts[0]
    assert (record.outcome, record.error_type) == ("error", "timeout")


async def test_slack_refusing_the_answer_is_recorded_and_others_are_still_served(harness: Harness) -> None:
    harness.slack.streaming_supported = False
    harness.slack.fail_next("chat.postMessage", "channel_not_found", times=2)  # the answer, then the note
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.error_type) == ("error", "delivery")
    await harness.mention("U1", "again")
    records = await harness.settled_records(2)
    assert records[1].outcome == "ok"
    assert harness.slack.posted_texts("C0001") == ["Echo: again"]
