"""A mention travels through the real app: signed HTTP → Bolt → gate → Anthropic (fake) → Slack (fake)."""

from __future__ import annotations

from bot.domain.roles import Role
from tests.support.harness import API_KEY, Harness, eventually


async def test_user_mention_is_answered_in_thread_through_haiku(harness: Harness) -> None:
    harness.slack.add_user("U100", name="ana")
    await harness.grant("U100", Role.USER)

    ts = await harness.mention("U100", "What is a gate?")

    (record,) = await harness.settled_records(1)
    body = harness.anthropic.last_body()
    assert body["model"] == harness.runtime.settings.model_haiku
    assert body["max_tokens"] == 512  # the user role's max_tokens
    assert body["messages"] == [{"role": "user", "content": "What is a gate?"}]
    assert harness.anthropic.requests[-1]["api_key"] == API_KEY
    await eventually(lambda: harness.slack.posted_texts("C0001"))
    assert harness.slack.posted_texts("C0001") == ["Echo: What is a gate?"]
    (stream,) = harness.slack.streams.values()
    assert stream["thread_ts"] == ts and stream["recipient_user_id"] == "U100"
    assert record.outcome == "ok" and record.role == "user" and record.key_label == "default"
    assert record.input_tokens == harness.anthropic.input_tokens_for(body)
    assert record.output_tokens == harness.anthropic.output_tokens_for("Echo: What is a gate?")
    assert record.estimated_cost > 0 and record.latency_ms is not None
    assert record.prompt is None  # LOG_PROMPTS is off


async def test_a_bare_mention_gets_one_hint_line_and_nothing_reaches_claude(harness: Harness) -> None:
    harness.slack.add_user("U100", name="ana")
    await harness.grant("U100", Role.POWER)
    await harness.mention("U100", "")
    (hint,) = await harness.told("U100")
    assert hint["text"] == ("Ask your question after <@UBOT>, e.g. `<@UBOT> explain this error`. You may use "
                            "`haiku`, `sonnet`, `opus`: start with `--model opus` to pick one.")
    await harness.mention("U100", "--model opus   ")
    await harness.told("U100", 2)
    assert harness.anthropic.requests == [] and await harness.records() == []  # no record, so no rpm slot either
    assert not harness.slack.calls_to("chat.startStream")


async def test_a_dm_of_only_a_model_flag_is_answered_with_the_hint_in_its_thread(harness: Harness) -> None:
    harness.slack.add_user("U100", name="ana")
    await harness.grant("U100", Role.USER)
    ts = await harness.dm("U100", "--model haiku")
    (post,) = await eventually(lambda: harness.slack.calls_to("chat.postMessage"))
    assert post["thread_ts"] == ts
    assert post["text"] == "Type your question, e.g. `explain this error`. Your role *user* uses `haiku`."
    assert harness.anthropic.requests == [] and await harness.records() == []


async def test_a_viewer_with_a_bare_mention_is_told_how_to_get_access_not_what_to_ask(harness: Harness) -> None:
    harness.slack.add_user("U100", name="ana")
    await harness.mention("U100", "")
    (hint,) = await harness.told("U100")
    assert "*viewer* cannot ask Claude" in hint["text"] and await harness.records() == []
