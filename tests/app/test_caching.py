"""Prompt caching (docs/spend.md): the thread's history is sent with a cache breakpoint, so a follow-up reads it from
Anthropic's cache; cache tokens are recorded and priced (writes 1.25×, reads 0.1× the input price)."""

from __future__ import annotations

from bot.domain.pricing import estimated_cost_micros
from bot.domain.roles import Role
from tests.support.harness import Harness

LONG_QUESTION = "Please review this design note carefully. " * 900  # ~5,400 tokens: above Haiku's 4,096 minimum


async def test_a_follow_up_in_a_thread_reads_the_history_from_the_cache(harness: Harness) -> None:
    harness.slack.add_user("U1", name="ana")
    await harness.grant("U1", Role.USER)  # haiku
    harness.anthropic.reply = "Noted."
    root = await harness.mention("U1", LONG_QUESTION)
    (first,) = await harness.settled_records(1)
    body = harness.anthropic.last_body()
    assert body["messages"][-1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert first.cache_write_tokens > 4_096 and first.cache_read_tokens == 0

    await harness.mention("U1", "And the short version?", thread_ts=root)
    second = (await harness.settled_records(2))[-1]
    body = harness.anthropic.last_body()
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert second.cache_read_tokens == first.cache_write_tokens  # the whole first prompt came from the cache
    assert second.cost_micros == estimated_cost_micros(
        second.model, second.input_tokens, second.output_tokens, harness.runtime.settings.prices,
        cache_write_tokens=second.cache_write_tokens, cache_read_tokens=second.cache_read_tokens)
    uncached = estimated_cost_micros(second.model, second.input_tokens + second.cache_read_tokens
                                     + second.cache_write_tokens, second.output_tokens, harness.runtime.settings.prices)
    assert second.cost_micros < uncached / 3


async def test_a_short_prompt_carries_no_breakpoint(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "short")
    (record,) = await harness.settled_records(1)
    assert isinstance(harness.anthropic.last_body()["messages"][-1]["content"], str)
    assert (record.cache_write_tokens, record.cache_read_tokens) == (0, 0)


async def test_usage_shows_what_caching_saved(harness: Harness) -> None:
    for user, role in (("UADMIN", Role.ADMIN), ("U1", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    harness.anthropic.reply = "Noted."
    root = await harness.mention("U1", LONG_QUESTION)
    await harness.settled_records(1)
    for follow_up in ("and then?", "and after that?"):
        await harness.mention("U1", follow_up, thread_ts=root)
    records = await harness.settled_records(3)
    read = sum(r.cache_read_tokens for r in records)
    answer = await harness.command("UADMIN", "/claude-admin", "usage U1")
    assert f"Prompt caching: {read:,} tokens read from the cache" in answer["text"] + str(answer.get("blocks"))
    assert "saved $" in str(answer.get("blocks")) + answer["text"]
    own = await harness.command("U1", "/claude", "usage")
    assert "Prompt caching" in own["text"] + str(own.get("blocks"))
