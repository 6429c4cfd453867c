"""Answers stream into Slack as Claude writes them: whole, in order, paced, through 429s, expiry and fallbacks.

Timing is checked as ordering of the times the fakes recorded (when Claude produced a delta, when Slack
received a call), never as a wall-clock limit; bench/first_text.py prints the measured latencies.
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from bot.domain.roles import Role
from bot.slack.stream import MESSAGE_LIMIT, STREAM_INTERVAL, UPDATE_INTERVAL, open_code_fence, split_message
from bot.store.models import RolePolicyRow
from tests.support.fakes import FakeAnthropic
from tests.support.fakes.slack import FakeSlack
from tests.support.harness import Harness, eventually

STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")
JITTER = 0.1  # seconds two requests sent a given time apart may arrive closer together


def record_delta_times(anthropic: FakeAnthropic) -> list[float]:
    """Have the fake note when it produces each text delta (time.monotonic(), same clock as Slack's fake)."""
    times: list[float] = []
    produce = FakeAnthropic.sse

    def sse(event: str, data: dict[str, Any]) -> bytes:
        if event == "content_block_delta":
            times.append(time.monotonic())
        return produce(event, data)

    anthropic.sse = sse  # type: ignore[method-assign]
    return times


def timed_calls(slack: FakeSlack, *methods: str) -> list[tuple[float, str, dict[str, Any]]]:
    return [(at, name, params) for at, (name, params) in zip(list(slack.call_times), list(slack.calls), strict=False)
            if name in methods]


def text_of(params: dict[str, Any]) -> str:
    """Markdown text a stream call carries (``markdown_text`` or ``markdown_text`` chunks)."""
    chunks = params.get("chunks") or []
    return (params.get("markdown_text") or "") + "".join(
        chunk.get("text", "") for chunk in chunks if chunk.get("type") == "markdown_text")


async def ask(harness: Harness, text: str = "hello", role: Role = Role.POWER, user: str = "U1") -> Any:
    harness.slack.add_user(user)
    await harness.grant(user, role)
    await harness.mention(user, text)
    (record,) = await harness.settled_records(1, timeout=30)
    return record


async def test_streamed_text_equals_the_model_text_in_start_append_stop_order(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"word{i}" for i in range(80))
    harness.anthropic.chunk_chars = 15
    harness.anthropic.chunk_delay = 0.03
    record = await ask(harness)
    calls = timed_calls(harness.slack, *STREAM_METHODS)
    names = [name for _, name, _ in calls]
    assert names[0] == "chat.startStream" and names[-1] == "chat.stopStream"
    assert set(names[1:-1]) == {"chat.appendStream"}
    (ts,) = harness.slack.streams
    assert all(params["ts"] == ts for _, name, params in calls if name != "chat.startStream")
    assert "".join(text_of(params) for _, _, params in calls) == harness.anthropic.reply
    assert harness.slack.posted_texts("C0001") == [harness.anthropic.reply]
    buttons = harness.slack.streams[ts]["blocks"][0]["elements"][0]
    assert buttons["type"] == "feedback_buttons"
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (
        f"up:{record.id}", f"down:{record.id}")
    assert record.outcome == "ok"


async def test_first_text_is_sent_when_the_first_token_arrives(harness: Harness) -> None:
    harness.anthropic.reply = "Hello there! And here is the rest."
    harness.anthropic.chunk_chars = 13  # "Hello there! " first, the rest a second later
    harness.anthropic.first_token_delay = 0.3
    harness.anthropic.chunk_delay = 1.0
    deltas = record_delta_times(harness.anthropic)
    await ask(harness)
    with_text = [(at, params) for at, _, params in timed_calls(harness.slack, *STREAM_METHODS) if text_of(params)]
    first_at, first = with_text[0]
    assert text_of(first) == "Hello there! "
    assert deltas[0] <= first_at < deltas[1]  # visible before Claude wrote its second delta


async def test_appends_are_paced_and_coalesced(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"w{i:03d}" for i in range(200))
    harness.anthropic.chunk_chars = 25
    harness.anthropic.chunk_delay = 0.04  # 40 deltas over about 1.6 s
    await ask(harness)
    appends = [at for at, _, _ in timed_calls(harness.slack, "chat.appendStream")]
    assert 0 < len(appends) < len(harness.anthropic.chunks_of(harness.anthropic.reply)) // 2
    assert all(later - earlier >= STREAM_INTERVAL - JITTER for earlier, later in pairwise(appends))
    assert harness.slack.posted_texts("C0001") == [harness.anthropic.reply]


async def test_slack_429_waits_for_retry_after_and_loses_nothing(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"w{i}" for i in range(150))
    harness.anthropic.chunk_chars = 40
    harness.anthropic.chunk_delay = 0.1
    harness.slack.fail_next("chat.appendStream", "ratelimited", retry_after=1, times=2)
    await ask(harness)
    appends = [at for at, _, _ in timed_calls(harness.slack, "chat.appendStream")]
    assert appends[1] - appends[0] >= 1 - JITTER and appends[2] - appends[1] >= 1 - JITTER
    assert harness.slack.posted_texts("C0001") == [harness.anthropic.reply]


async def test_slack_429_beyond_the_sdk_retries_still_loses_nothing(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"w{i}" for i in range(150))
    harness.anthropic.chunk_chars = 40
    harness.anthropic.chunk_delay = 0.05
    harness.slack.fail_next("chat.appendStream", "ratelimited", retry_after=0, times=6)  # slack_sdk retries 4
    record = await ask(harness)
    assert harness.slack.posted_texts("C0001") == [harness.anthropic.reply]
    assert record.outcome == "ok"


@pytest.mark.parametrize("error", ["not_allowed", "unknown_method"])
async def test_streaming_unavailable_posts_then_updates_markdown(harness: Harness, error: str) -> None:
    harness.slack.fail_next("chat.startStream", error)
    reply = ("**Bold**, `code` and [a link](https://example.com)\n\n- one\n- two\n\n```python\nprint('hi')\n```\n\n"
             + " ".join(f"word{i}" for i in range(120)))
    harness.anthropic.reply = reply
    harness.anthropic.chunk_chars = 30
    harness.anthropic.chunk_delay = 0.05
    record = await ask(harness)
    (post,) = harness.slack.calls_to("chat.postMessage")
    updates = timed_calls(harness.slack, "chat.update")
    assert "markdown_text" in post and "text" not in post  # Markdown, rendered by Slack
    assert all("markdown_text" in params for _, _, params in updates[:-1])
    final = updates[-1][2]
    shown = reply.replace("[a link](https://example.com)", "a link (https://example.com)")  # the address shows
    assert final["blocks"][0] == {"type": "markdown", "text": shown}  # markdown_text cannot go with blocks
    assert final["blocks"][1]["elements"][0]["positive_button"]["value"] == f"up:{record.id}"
    paced = [at for at, _, _ in updates[:-1]]  # the final update goes out as soon as the answer is complete
    assert all(later - earlier >= UPDATE_INTERVAL - JITTER for earlier, later in pairwise(paced))
    assert harness.slack.posted_texts("C0001") == [shown]


async def test_workspace_without_streaming_is_remembered(harness: Harness) -> None:
    harness.slack.fail_next("chat.startStream", "unknown_method")
    await ask(harness, "first")
    await harness.mention("U1", "second")
    await harness.settled_records(2)
    assert len(harness.slack.calls_to("chat.startStream")) == 1
    assert harness.slack.posted_texts("C0001") == ["Echo: first", "Echo: second"]


async def test_stream_expiring_mid_answer_continues_in_the_same_message(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"part{i}" for i in range(60))
    harness.anthropic.chunk_chars = 20
    harness.anthropic.chunk_delay = 0.1
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    await harness.mention("U1", "hello")
    stream = await eventually(lambda: next(iter(harness.slack.streams.values()), None))
    await eventually(lambda: len(stream["text"]) > 40)
    harness.slack.expire_stream(stream["ts"])
    (record,) = await harness.settled_records(1, timeout=20)
    assert harness.slack.posted_texts("C0001") == [harness.anthropic.reply]
    final = harness.slack.calls_to("chat.update")[-1]
    assert final["ts"] == stream["ts"] and final["blocks"][0]["text"] == harness.anthropic.reply
    assert record.outcome == "ok"


@pytest.mark.parametrize("streaming", [True, False])
async def test_an_answer_of_10000_characters_arrives_whole(harness: Harness, streaming: bool) -> None:
    harness.slack.streaming_supported = streaming
    reply = " ".join(f"answer{i:06d}" for i in range(770))[:10_000]  # 770 words: within 1,024 tokens
    harness.anthropic.reply = reply
    harness.anthropic.chunk_chars = 400
    await ask(harness)
    assert harness.slack.posted_texts("C0001") == [reply]


@pytest.mark.parametrize("streaming", [True, False])
async def test_long_code_continues_in_a_second_message_with_fences_closed(harness: Harness, streaming: bool) -> None:
    harness.slack.streaming_supported = streaming
    code = "\n".join(f"value_{i:04d}=compute({i:04d})+offset_total" for i in range(350))  # 13,600 characters
    reply = f"Here it is:\n\n```python\n{code}\n```\n\nThat is all."
    harness.anthropic.reply = reply
    harness.anthropic.chunk_chars = 700
    await ask(harness)
    first, second = harness.slack.posted_texts("C0001")
    assert len(first) <= MESSAGE_LIMIT + 4 and first.endswith("\n```") and second.startswith("```python\n")
    assert first.count("```") % 2 == 0 and second.count("```") % 2 == 0
    assert first.removesuffix("\n```") + "\n" + second.removeprefix("```python\n") == reply


async def test_answer_cut_by_the_role_token_limit_says_so(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"w{i}" for i in range(600))  # the fake stops at max_tokens words
    record = await ask(harness, role=Role.USER)
    (text,) = harness.slack.posted_texts("C0001")
    assert text.startswith(" ".join(f"w{i}" for i in range(512)))
    assert text.endswith("_The answer stops here: it reached the 512-token limit of your role *user*. "
                         "Ask for the rest, or for a shorter answer._")
    assert record.outcome == "ok" and record.output_tokens == 512


async def test_a_power_user_gets_4096_tokens_and_the_note_names_their_role(harness: Harness) -> None:
    harness.anthropic.reply = " ".join(f"w{i}" for i in range(5000))
    record = await ask(harness, role=Role.POWER)
    assert harness.anthropic.last_body()["max_tokens"] == 4096
    text = "".join(harness.slack.posted_texts("C0001"))
    assert "reached the 4,096-token limit of your role *power*" in text and record.output_tokens == 4096


async def test_answer_cut_by_what_is_left_of_the_daily_budget_names_the_budget(harness: Harness) -> None:
    async with harness.sessions.begin() as session:
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "user")
                              .values(daily_token_budget=600))
    harness.anthropic.reply = " ".join(f"w{i}" for i in range(600))
    record = await ask(harness, role=Role.USER)
    # nothing spent yet today: what is left after the input's upper bound (below the role's 512)
    assert record.max_tokens == record.output_tokens == 600 - record.input_estimate < 512
    (text,) = harness.slack.posted_texts("C0001")
    assert f"the {record.max_tokens:,} tokens that your daily token budget leaves room for" in text


async def test_empty_answer_is_not_silent(harness: Harness) -> None:
    harness.anthropic.reply = ""
    record = await ask(harness)
    assert harness.slack.posted_texts("C0001") == ["_Claude returned an empty answer. Try asking in other words._"]
    assert record.outcome == "ok"


async def test_slack_markup_in_the_question_reaches_claude_readable(harness: Harness) -> None:
    harness.slack.add_user("U2", name="ben")
    await ask(harness, "ask <@U2> about <https://example.com|the docs> in <#C0002|ops>: is a &lt; b &amp;&amp; c?")
    assert harness.anthropic.last_body()["messages"][-1]["content"] == (
        "ask @ben about the docs (https://example.com) in #ops: is a < b && c?")


@given(sent=st.text(alphabet="ab \n", max_size=60), text=st.text(alphabet="ab \n", max_size=200))
def test_split_message_fits_and_only_drops_the_break(sent: str, text: str) -> None:
    head, rest = split_message(sent, text, limit=80)
    assert len(sent) + len(head) <= 80 or not rest
    assert text.startswith(head) and text.endswith(rest)
    assert text[len(head):len(text) - len(rest)] in ("", " ", "\n", "\n\n")


def test_open_code_fence_tracks_the_last_opening_line() -> None:
    assert open_code_fence("text\n```js\nlet a\n") == "```js"
    assert open_code_fence("```js\nlet a\n```\nmore") is None
    assert open_code_fence("no code") is None
