"""A mention travels through the real app: signed HTTP → Bolt → gate → Anthropic (fake) → Slack (fake)."""

from __future__ import annotations

from bot.domain.roles import Role
from tests.conftest import API_KEY, Harness, eventually


async def test_user_mention_is_answered_in_thread_through_haiku(harness: Harness) -> None:
    harness.slack.add_user("U100", name="ana")
    await harness.grant("U100", Role.USER)

    ts = await harness.mention("U100", "What is a gate?")

    (record,) = await harness.settled_records(1)
    body = harness.anthropic.last_body()
    assert body["model"] == harness.gate.settings.model_haiku
    assert body["max_tokens"] == 512  # min(1024 requested by default, user max 512)
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
