"""The gate, in its order (docs/architecture.md): external/guest → role allows chat → model → rpm → daily budget."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bot.domain.roles import Role
from bot.store.models import RolePolicyRow, UserPreference
from tests.support.harness import Harness, eventually

MODEL_AND_TOKENS = {
    Role.USER: ("haiku", 512),
    Role.POWER: ("haiku", 4096),  # the role's own max_tokens: nobody in Slack asks for fewer
    Role.ADMIN: ("haiku", 8192),
    Role.OWNER: ("haiku", 8192),
}


@pytest.mark.parametrize("role", [Role.USER, Role.POWER, Role.ADMIN, Role.OWNER])
async def test_chat_roles_are_admitted_with_their_limits(harness: Harness, role: Role) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", role)
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    alias, max_tokens = MODEL_AND_TOKENS[role]
    body = harness.anthropic.last_body()
    assert body["model"] == harness.runtime.settings.models.resolve(alias)
    assert body["max_tokens"] == max_tokens
    assert (record.outcome, record.role, record.max_tokens) == ("ok", role.value, max_tokens)


@pytest.mark.parametrize("role", [Role.POWER, Role.ADMIN, Role.OWNER])
@pytest.mark.parametrize("alias", ["sonnet", "opus"])
async def test_model_flag_picks_an_allowed_model(harness: Harness, role: Role, alias: str) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", role)
    await harness.mention("U1", f"--model {alias} write a haiku")
    await harness.settled_records(1)
    body = harness.anthropic.last_body()
    assert body["model"] == harness.runtime.settings.models.resolve(alias)
    assert body["messages"][-1]["content"] == "write a haiku"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING])
async def test_roles_without_chat_are_refused_with_how_to_ask(harness: Harness, role: Role) -> None:
    harness.slack.add_user("U1")
    harness.slack.add_user("UADMIN")
    await harness.grant("UADMIN", Role.ADMIN)
    await harness.grant("U1", role)
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.refusal_reason, record.role) == ("refused", "role_cannot_chat", role.value)
    (ephemeral,) = await harness.told("U1")
    assert f"Your role *{role}* cannot ask Claude" in ephemeral["text"]
    assert "<@UADMIN>" in ephemeral["text"] and "/claude-admin grant <@U1> user" in ephemeral["text"]
    assert harness.anthropic.message_requests() == []
    assert harness.slack.posted_texts() == []


async def test_user_without_grant_gets_default_role_viewer(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert record.role == "viewer" and record.refusal_reason == "role_cannot_chat"
    assert "an admin" in (await harness.told("U1"))[0]["text"]


async def test_default_role_setting_applies_to_everyone(harness_factory) -> None:
    harness = await harness_factory(default_role="user")
    harness.slack.add_user("U1")
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.role) == ("ok", "user")


async def test_unknown_slack_user_fails_closed(harness: Harness) -> None:
    await harness.grant("UGHOST", Role.OWNER)  # even an owner grant does not help if Slack cannot vouch
    await harness.mention("UGHOST", "hello")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "unknown_user"
    assert "could not look up your Slack profile" in (await harness.told("UGHOST"))[0]["text"]
    assert harness.anthropic.message_requests() == []


async def test_users_info_failure_fails_closed(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    harness.slack.fail_next("users.info", "internal_error")
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "unknown_user"


async def test_model_not_allowed_lists_the_allowed_ones(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "--model opus think hard")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "model_not_allowed"
    assert record.model == harness.runtime.settings.model_opus
    text = (await harness.told("U1"))[0]["text"]
    assert "may not use `opus`" in text and "`haiku`" in text
    assert harness.anthropic.message_requests() == []


async def test_unknown_model_is_refused(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    await harness.mention("U1", "--model gpt-9 hi")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "unknown_model"
    assert "`haiku`, `sonnet`, `opus`" in (await harness.told("U1"))[0]["text"]


async def test_full_model_id_is_accepted_when_the_role_lists_it(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    model_id = harness.runtime.settings.model_sonnet
    await harness.mention("U1", f"--model {model_id} hi")
    await harness.settled_records(1)
    assert harness.anthropic.last_body()["model"] == model_id


async def test_preferred_model_is_used_and_ignored_when_no_longer_allowed(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    async with harness.sessions.begin() as session:
        session.add(UserPreference(slack_user_id="U1", preferred_model="opus", updated_at=harness.clock()))
    await harness.mention("U1", "one")
    await harness.settled_records(1)
    assert harness.anthropic.last_body()["model"] == harness.runtime.settings.model_opus
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "two")
    await harness.settled_records(2)
    assert harness.anthropic.last_body()["model"] == harness.runtime.settings.model_haiku


async def test_rpm_boundary_eleventh_refused_then_admitted_after_the_window(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)  # rpm_limit 10
    for i in range(10):
        await harness.mention("U1", f"q{i}")
        await harness.settled_records(i + 1)  # admitted at t0 + i
        harness.clock.advance(1)
    await harness.mention("U1", "one too many")
    records = await harness.settled_records(11)
    assert [r.outcome for r in records] == ["ok"] * 10 + ["refused"]
    assert records[-1].refusal_reason == "rate_limited"
    # the first admission was at t0; we are at t0+10 s: the oldest slot frees 50 s from now
    assert "A slot frees in 50 s" in (await harness.told("U1"))[-1]["text"]
    assert len(harness.anthropic.message_requests()) == 10

    harness.clock.advance(50)  # t0+60: the first admission has left the rolling window
    await harness.mention("U1", "again")
    records = await harness.settled_records(12)
    assert records[-1].outcome == "ok"
    await harness.mention("U1", "and again")  # t0+60 still holds 9 admissions from t0+1..t0+9 plus one
    records = await harness.settled_records(13)
    assert records[-1].outcome == "refused"


async def test_rpm_is_per_user(harness: Harness) -> None:
    for user in ("U1", "U2"):
        harness.slack.add_user(user)
        await harness.grant(user, Role.USER)
    async with harness.sessions.begin() as session:
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "user").values(rpm_limit=1))
    await harness.mention("U1", "a")
    await harness.mention("U2", "b")
    await harness.mention("U1", "c")
    records = await harness.settled_records(3)
    outcomes = sorted((r.slack_user_id, r.outcome) for r in records)
    assert outcomes == [("U1", "ok"), ("U1", "refused"), ("U2", "ok")]


async def test_daily_token_budget_refuses_once_spent_and_caps_max_tokens(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    async with harness.sessions.begin() as session:
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "power")
                              .values(daily_token_budget=1_000))
    harness.anthropic.reply = "word " * 2_000
    await harness.mention("U1", "first")
    (first,) = await harness.settled_records(1)
    # the input's upper bound and the answer together never more than what is left today
    assert first.input_estimate >= first.input_tokens
    assert harness.anthropic.last_body()["max_tokens"] == 1_000 - first.input_estimate == first.output_tokens
    await harness.mention("U1", "second")
    records = await harness.settled_records(2)
    assert records[-1].refusal_reason == "budget_exhausted"
    told = (await harness.told("U1"))[-1]["text"]
    assert "your daily token budget" in told and "of 1,000 tokens" in told and "00:00 UTC" in told
    assert len(harness.anthropic.message_requests()) == 1


async def test_guest_refused_unless_allowed(harness_factory) -> None:
    harness = await harness_factory()
    harness.slack.add_user("UG", is_restricted=True)
    harness.slack.add_user("UUG", is_ultra_restricted=True)
    await harness.grant("UG", Role.POWER)
    await harness.grant("UUG", Role.POWER)
    await harness.mention("UG", "hi")
    await harness.mention("UUG", "hi")
    records = await harness.settled_records(2)
    assert [r.refusal_reason for r in records] == ["guest", "guest"]
    assert "guest" in (await harness.told("UG"))[0]["text"]

    allowed = await harness_factory(allow_guests=True)
    await allowed.mention("UG", "hi again")
    records = await allowed.settled_records(3)
    assert records[-1].outcome == "ok"


async def test_slack_connect_user_is_external_even_without_guest_flags(harness_factory) -> None:
    harness = await harness_factory()
    harness.slack.add_user("UEXT", team_id="T_OTHER")
    await harness.grant("UEXT", Role.POWER)
    await harness.mention("UEXT", "hi")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "external_user"
    assert "ALLOW_EXTERNAL_USERS" in (await harness.told("UEXT"))[0]["text"]

    allowed = await harness_factory(allow_external_users=True)
    await allowed.mention("UEXT", "hi again")
    records = await allowed.settled_records(2)
    assert records[-1].outcome == "ok"


async def test_same_enterprise_other_workspace_is_not_external(harness: Harness) -> None:
    harness.slack.enterprise_id = "E1"
    harness.slack.add_user("UGRID", team_id="T_SISTER", enterprise_id="E1")
    await harness.grant("UGRID", Role.USER)
    await harness.mention("UGRID", "hi")
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"


async def test_gate_order_external_before_role(harness: Harness) -> None:
    harness.slack.add_user("UEXT", team_id="T_OTHER")  # viewer and external: external is reported
    await harness.mention("UEXT", "hi")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "external_user"


async def test_log_prompts_stores_text_only_when_enabled(harness_factory) -> None:
    harness = await harness_factory(log_prompts=True)
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "remember this")
    (record,) = await harness.settled_records(1)
    assert record.prompt == "remember this"


async def test_policy_edit_applies_to_the_next_request(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    async with harness.sessions.begin() as session:
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "user")
                              .values(models=["sonnet"], max_tokens=300))
    await harness.mention("U1", "hi")
    await harness.settled_records(1)
    body = harness.anthropic.last_body()
    assert (body["model"], body["max_tokens"]) == (harness.runtime.settings.model_sonnet, 300)


async def test_bots_and_edits_are_ignored(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.send_event({"type": "message", "channel_type": "im", "subtype": "message_changed",
                              "channel": "DU1", "ts": "1.1", "message": {"text": "edited"}})
    await harness.send_event({"type": "message", "channel_type": "im", "bot_id": "B0001", "user": "UBOT",
                              "channel": "DU1", "ts": "1.2", "text": "my own answer"})
    await harness.send_event({"type": "message", "channel_type": "channel", "user": "U1",
                              "channel": "C0001", "ts": "1.3", "text": "not for me"})
    await harness.dm("U1", "a real question")
    records = await harness.settled_records(1)
    assert len(records) == 1 and records[0].surface == "dm"
    await eventually(lambda: harness.slack.posted_texts("DU1"))
    assert harness.slack.posted_texts("DU1") == ["Echo: a real question"]


async def test_price_table_override_sets_the_estimated_cost(harness_factory) -> None:
    harness = await harness_factory(model_prices={"haiku": (1000.0, 2000.0)})
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", "what does it cost?")
    (record,) = await harness.settled_records(1)
    assert record.estimated_cost == pytest.approx((record.input_tokens * 1000 + record.output_tokens * 2000) / 1e6)
