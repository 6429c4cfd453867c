"""Models that retire: Anthropic's model list (the Models API, served by the fake in its documented shape, paged)
is read by `serve` at start-up and daily; a model it marks retired, or no longer lists, is refused with what to do
instead of Anthropic's 404; a deprecated one is answered and reported; each retired model is alerted once."""

from __future__ import annotations

from bot.domain.marks import unmarked
from bot.domain.roles import Role
from bot.services.conversation.listed_models import report
from tests.support.harness import Harness


async def people(harness: Harness) -> Harness:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    return harness


def listing(harness: Harness, **lifecycles: str) -> None:
    models = harness.runtime.settings.models
    harness.anthropic.listed_models = [
        harness.anthropic.model_info(models.aliases[alias], lifecycles.get(alias, "active"),
                                     retires_at="2027-03-01T00:00:00Z" if lifecycles.get(alias) else None)
        for alias in ("haiku", "sonnet", "opus") if lifecycles.get(alias) != "gone"]


async def test_a_retired_model_is_refused_with_what_to_do_and_alerted_once(harness_factory) -> None:
    harness = await people(await harness_factory(admin_alert_channel="C0ALERTS"))
    await harness.mention("U1", "before the list is read")  # nothing is known: nothing is refused
    assert (await harness.settled_records(1))[0].outcome == "ok"
    listing(harness, haiku="retired")
    harness.anthropic.admin_requests.clear()
    models = harness.runtime.gate.models
    assert await models.refresh(harness.clock())
    (read,) = [r for r in harness.anthropic.admin_requests if r["path"] == "/v1/models"]
    assert read["api_key"] == harness.runtime.settings.anthropic_api_key.get_secret_value()
    sent = len(harness.anthropic.message_requests())
    await harness.mention("U1", "hello")
    record = (await harness.settled_records(2))[-1]
    assert record.refusal_reason == "model_retired"
    told = (await harness.told("U1"))[-1]["text"]
    assert "`haiku` points at" in told and "retired" in told and "claude-gate models" in told
    assert len(harness.anthropic.message_requests()) == sent  # never sent to Anthropic for a 404
    args = (harness.runtime.db, harness.runtime.settings, harness.clock, harness.runtime.slack)
    lines = [unmarked(line) for line in await report(models, *args)]
    assert any("is retired at Anthropic" in line and "MODEL_HAIKU" in line and "the user policy" in line
               for line in lines), lines
    assert len(harness.slack.posted_texts("C0ALERTS")) == 1
    await report(models, *args)  # the same model again: no second alert
    assert len(harness.slack.posted_texts("C0ALERTS")) == 1


async def test_a_model_no_longer_listed_counts_as_retired_and_a_deprecated_one_is_answered(harness_factory) -> None:
    harness = await people(await harness_factory())
    listing(harness, haiku="deprecated", opus="gone")
    harness.anthropic.models_page_cap = 1  # a model a page: the SDK's paginator follows after_id
    models = harness.runtime.gate.models
    assert await models.refresh(harness.clock())
    assert models.retired(harness.runtime.settings.model_opus) and not models.retired(
        harness.runtime.settings.model_haiku)
    await harness.mention("U1", "hello")
    assert (await harness.settled_records(1))[0].outcome == "ok"  # deprecated: still answered
    lines = [unmarked(line) for line in await report(models, harness.runtime.db, harness.runtime.settings,
                                                     harness.clock, harness.runtime.slack)]
    assert any("deprecated" in line and "retires on 2027-03-01" in line for line in lines), lines


async def test_a_failed_read_keeps_what_was_known(harness_factory) -> None:
    harness = await people(await harness_factory())
    listing(harness, haiku="retired")
    models = harness.runtime.gate.models
    assert await models.refresh(harness.clock())
    harness.anthropic.valid_keys = {"sk-ant-api03-some-other-key"}  # our key refused: the read fails
    assert not await models.refresh(harness.clock())
    assert models.retired(harness.runtime.settings.model_haiku)


async def test_an_undated_alias_is_listed_through_its_dated_snapshot(harness_factory) -> None:
    harness = await harness_factory()
    harness.anthropic.listed_models = [harness.anthropic.model_info("claude-haiku-4-5-20251001"),
                                       harness.anthropic.model_info("claude-opus-4-1-20250805", "retired")]
    models = harness.runtime.gate.models
    assert await models.refresh(harness.clock())
    assert not models.retired("claude-haiku-4-5")  # the API accepts the alias of a listed snapshot
    assert models.retired("claude-opus-4-1") and models.retired("claude-haiku-3-9")
