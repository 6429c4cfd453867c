"""Per-channel settings (docs/channels-and-data.md), through the real app:
commands, the gate's channel check, model precedence,
the channel's prompt, the App Home overview, the shell, and bad input changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.domain.channels import MAX_CHANNEL_PROMPT, parse_channel, parse_channel_change
from bot.domain.roles import Role
from bot.store.models import ChannelSetting, UserPreference
from tests.app.test_cli import run_cli
from tests.support.harness import Harness, eventually, text_of

ADMIN = "/claude-admin"


@pytest.fixture
async def org(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("UPOWER", Role.POWER),
                       ("UUSER", Role.USER), ("UBILL", Role.BILLING)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    return harness


async def setting(harness: Harness, channel: str) -> ChannelSetting | None:
    async with harness.sessions() as session:
        return await session.get(ChannelSetting, channel)


# -- grammar ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("<#C0123|general>", ("C0123", "general")), ("<#C0123>", ("C0123", None)), ("C0123", ("C0123", None)),
    ("<#G0ABC|secret>", ("G0ABC", "secret")),
])
def test_channel_arguments_accept_slack_forms(text: str, expected: tuple[str, str | None]) -> None:
    ref = parse_channel(text)
    assert ref is not None and (ref.id, ref.name) == expected


@pytest.mark.parametrize("text", ["#general", "general", "D0123", "<@U0123>", "<#C0123", "C", ""])
def test_other_texts_are_not_channels(text: str) -> None:
    assert parse_channel(text) is None


def test_role_lists_are_exact_and_ordered() -> None:
    change = parse_channel_change("roles power, user,power")
    assert change.value == (Role.USER, Role.POWER)
    assert parse_channel_change("roles all").value is None
    assert parse_channel_change("prompt none").value is None
    assert parse_channel_change("model NONE").value is None


# -- commands ------------------------------------------------------------------------------------------------
async def test_admin_configures_a_channel_and_every_change_is_audited(org: Harness) -> None:
    answer = await org.command("UADMIN", ADMIN, "channel <#C0100|general> off")
    assert "<#C0100> enabled: off" in answer["text"] and answer["response_type"] == "ephemeral"
    assert "model: sonnet" in (await org.command("UADMIN", ADMIN, "channel <#C0100> model SONNET"))["text"]
    await org.command("UOWNER", ADMIN, "channel C0100 roles power,admin")
    await org.command("UADMIN", ADMIN, "channel C0100 prompt Answer in French.\nKeep it short.")

    row = await setting(org, "C0100")
    assert row is not None and (row.enabled, row.off_by, row.model, row.roles) == (False, "UADMIN", "sonnet",
                                                                                    ["power", "admin"])
    assert row.prompt == "Answer in French.\nKeep it short." and row.name == "c0100"
    assert row.set_by == {"enabled": "UADMIN", "model": "UADMIN", "roles": "UOWNER", "prompt": "UADMIN"}

    shown = text_of(await org.command("UADMIN", ADMIN, "channel <#C0100>"))
    for part in ("switched off by <@UADMIN>", "power, admin", "set by <@UOWNER>", "`sonnet`", "Answer in French."):
        assert part in shown
    listed = text_of(await org.command("UOWNER", ADMIN, "channels"))
    assert "1 channel" in listed and "<#C0100>" in listed and "prompt of 32 characters" in listed

    audit = [(a.actor, a.action, a.target, a.detail["setting"]) for a in await org.audit() if a.action == "channel.set"]
    assert audit == [("UADMIN", "channel.set", "C0100", "enabled"), ("UADMIN", "channel.set", "C0100", "model"),
                     ("UOWNER", "channel.set", "C0100", "roles"), ("UADMIN", "channel.set", "C0100", "prompt")]
    prompt_audit = next(a.detail for a in await org.audit() if a.detail and a.detail.get("setting") == "prompt")
    assert prompt_audit["new_chars"] == 32 and "French" not in json.dumps(prompt_audit)

    # back to the defaults: no longer listed as configured
    for text in ("on", "model none", "prompt none", "roles all"):
        await org.command("UADMIN", ADMIN, f"channel C0100 {text}")
    assert "0 channels" in text_of(await org.command("UADMIN", ADMIN, "channels"))


@pytest.mark.parametrize("user", ["UUSER", "UPOWER", "UBILL"])
async def test_only_admins_and_owners_change_channels(org: Harness, user: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command(user, ADMIN, "channel C0100 off")
    assert ":no_entry:" in answer["text"]
    assert await setting(org, "C0100") is None
    after = await org.table_snapshot()
    assert next(row for row in after["audit_log"] if row not in before["audit_log"])[3] == "denied"
    assert "/claude-admin channel" not in text_of(await org.command(user, ADMIN, "help"))


@pytest.mark.parametrize(("text", "expected"), [
    ("channel C0404 off", "knows no channel C0404"),
    ("channel #general off", "is not a channel"),
    ("channel D0001 off", "is not a channel"),
    ("channel C0100 prompt " + "x" * (MAX_CHANNEL_PROMPT + 1), "at most 2,000"),
    ("channel C0100 roles user,powr", "`powr` is not a role"),
    ("channel C0100 roles", "comma list of roles"),
    ("channel C0100 model gpt-9", "not a model I know"),
    ("channel C0100 model haiku sonnet", "one model alias"),
    ("channel C0100 loud", "not a channel setting"),
    ("channel C0100 off now", "takes nothing after it"),
    ("channel", "Missing channel"),
])
async def test_bad_input_is_one_line_and_changes_nothing(org: Harness, text: str, expected: str) -> None:
    org.slack.channels["C0404"] = None  # Slack answers channel_not_found
    before = await org.table_snapshot()
    answer = await org.command("UADMIN", ADMIN, text)
    assert expected in answer["text"] and ":warning:" in answer["text"]
    assert "Usage:" in text_of(answer)
    assert await org.table_snapshot() == before


# -- the gate -------------------------------------------------------------------------------------------------
async def test_channel_off_refuses_everyone_with_who_switched_it_off(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "channel <#C0100|general> off")
    await org.mention("UOWNER", "hello", channel="C0100")
    (record,) = await org.settled_records(1)
    assert (record.outcome, record.refusal_reason) == ("refused", "channel_off")
    (line,) = await org.told("UOWNER")
    assert "switched off in <#C0100> by <@UADMIN>" in line["text"]
    assert org.anthropic.message_requests() == []
    # other channels and DMs are untouched
    await org.mention("UOWNER", "hello", channel="C0200")
    await org.dm("UOWNER", "hello")
    records = await org.settled_records(3)
    assert [r.outcome for r in records] == ["refused", "ok", "ok"]
    # switched on again: answered at once (nothing cached)
    await org.command("UOWNER", ADMIN, "channel C0100 on")
    await org.mention("UUSER", "hello again", channel="C0100")
    assert (await org.settled_records(4))[-1].outcome == "ok"


async def test_a_change_through_another_process_applies_at_once(org: Harness, harness_factory) -> None:
    other = await harness_factory()
    await org.mention("UUSER", "first", channel="C0100")
    await org.settled_records(1)
    await other.command("UADMIN", ADMIN, "channel C0100 off")  # the second app, same database
    await org.mention("UUSER", "second", channel="C0100")
    records = await org.settled_records(2)
    assert [r.refusal_reason for r in records] == [None, "channel_off"]


async def test_channel_roles_admit_exactly_the_roles_listed(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "channel C0100 roles power")
    await org.mention("UUSER", "hello", channel="C0100")
    await org.mention("UADMIN", "hello", channel="C0100")  # admins too are refused where they are not listed
    await org.mention("UPOWER", "hello", channel="C0100")
    records = await org.settled_records(3)
    assert {(r.slack_user_id, r.refusal_reason) for r in records} == {
        ("UUSER", "channel_role"), ("UADMIN", "channel_role"), ("UPOWER", None)}
    (line,) = await org.told("UUSER")
    assert "Your role *user* may not ask Claude in <#C0100>" in line["text"] and "*power*" in line["text"]
    assert len(org.anthropic.message_requests()) == 1


async def test_role_check_comes_before_the_channel(org: Harness) -> None:
    """In the gate's order (docs/architecture.md): a role without chat is told so, not about the channel."""
    await org.command("UADMIN", ADMIN, "channel C0100 off")
    await org.mention("UBILL", "hello", channel="C0100")
    (record,) = await org.settled_records(1)
    assert record.refusal_reason == "role_cannot_chat"


async def test_model_precedence_flag_channel_person_role(org: Harness) -> None:
    models = org.runtime.settings.models
    await org.command("UADMIN", ADMIN, "channel C0100 model sonnet")
    async with org.sessions.begin() as session:
        session.add(UserPreference(slack_user_id="UPOWER", preferred_model="opus", updated_at=org.clock()))

    asked = 0

    async def model_of(user: str, text: str, channel: str) -> str:
        nonlocal asked
        asked += 1
        await org.mention(user, text, channel=channel)
        (*_, record) = await org.settled_records(asked)
        assert record.outcome == "ok"
        return record.model

    assert await model_of("UPOWER", "one", "C0100") == models.resolve("sonnet")  # channel over person
    assert await model_of("UPOWER", "--model haiku two", "C0100") == models.resolve("haiku")  # flag over channel
    assert await model_of("UPOWER", "three", "C0200") == models.resolve("opus")  # person elsewhere
    assert await model_of("UUSER", "four", "C0100") == models.resolve("haiku")  # within the role: user has haiku


async def test_channel_prompt_is_added_to_the_system_prompt_there_only(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "channel C0100 prompt Always answer in French.")
    await org.mention("UUSER", "hello", channel="C0100")
    await org.settled_records(1)
    system = org.anthropic.last_body()["system"]
    system_text = system if isinstance(system, str) else " ".join(block["text"] for block in system)
    assert system_text.startswith("You are Claude") and system_text.endswith("Always answer in French.")
    await org.mention("UUSER", "hello", channel="C0200")
    await org.settled_records(2)
    assert "French" not in json.dumps(org.anthropic.last_body()["system"])


async def test_dms_follow_only_the_role(org: Harness) -> None:
    """A DM channel id never matches channel settings, even a row stored under it by hand."""
    async with org.sessions.begin() as session:
        session.add(ChannelSetting(channel_id="DUUSER", enabled=False, updated_at=org.clock()))
    await org.dm("UUSER", "hello")
    (record,) = await org.settled_records(1)
    assert record.outcome == "ok"


async def test_app_home_lists_configured_channels_for_admins(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "channel <#C0100|general> off")
    await org.command("UADMIN", ADMIN, "channel C0200 roles power")
    for user in ("UADMIN", "UUSER"):
        await org.send_event({"type": "app_home_opened", "user": user, "channel": "D" + user, "tab": "home"})
    await eventually(lambda: len(org.slack.calls_to("views.publish")) == 2)
    views = {call["user_id"]: json.dumps(call["view"]) for call in org.slack.calls_to("views.publish")}
    assert "Channels with their own settings" in views["UADMIN"]
    assert "<#C0100>" in views["UADMIN"] and "roles power" in views["UADMIN"]
    assert "<#C0100>" not in views["UUSER"]


async def test_role_stored_then_renamed_never_widens(org: Harness) -> None:
    """A stored role list with a name no longer known admits only the known roles listed, never everyone."""
    await org.command("UADMIN", ADMIN, "channel C0100 roles power")
    async with org.sessions.begin() as session:
        await session.execute(update(ChannelSetting).values(roles=["emperor"]))
    await org.mention("UPOWER", "hello", channel="C0100")
    (record,) = await org.settled_records(1)
    assert record.refusal_reason == "channel_role"


# -- the shell -------------------------------------------------------------------------------------------------
def test_shell_channel_uses_the_same_grammar_and_audit(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    done = run_cli("channel", "C0777", "roles", "user,power", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "C0777 roles: user, power" in done.stdout
    bad = run_cli("channel", "C0777", "roles", "user,powr", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "powr" in bad.stderr and len(bad.stderr.strip().splitlines()) <= 2
    listed = run_cli("channels", env=env, cwd=tmp_path)
    assert "C0777" in listed.stdout and "roles user, power" in listed.stdout

    from sqlalchemy import create_engine

    from bot.store.db import sync_url
    from bot.store.models import AuditEntry

    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("cli", "channel.set", "C0777")]


async def test_follow_ups_in_a_channel_switched_off_get_nothing(org: Harness) -> None:
    from tests.app.test_follow_ups import asked_and_answered, channel_message

    root = await asked_and_answered(org, "UUSER")
    await org.command("UADMIN", ADMIN, "channel C0001 off")
    await channel_message(org, "UUSER", "And why?", thread_ts=root)
    records = await org.settled_records(2)
    assert records[-1].refusal_reason == "channel_off"
    assert org.ephemerals_for("UUSER") == [] and len(org.anthropic.message_requests()) == 1
