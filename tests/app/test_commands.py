"""`/claude-admin` and `/claude` through the real app: answers, rights, audit, and bad input changing nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from bot.store.models import GroupMember, RolePolicyRow, UserPreference
from tests.support.harness import Harness, eventually, text_of

ADMIN = "/claude-admin"


@pytest.fixture
async def org(harness: Harness) -> Harness:
    """An owner, an admin, a billing user, a user and a viewer, all known to Slack."""
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("UBILL", Role.BILLING),
                       ("UUSER", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    harness.slack.add_user("UVIEW", name="uview")
    harness.slack.add_user("UNEW", name="newbie")
    return harness


async def audit_actions(harness: Harness) -> list[tuple[str, str, str | None]]:
    return [(a.actor, a.action, a.target) for a in await harness.audit() if a.actor != "test"]


# -- help and rights --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("user", "visible", "hidden"), [
    ("UVIEW", ["help"], ["grant", "usage", "keys"]),
    ("UUSER", ["help"], ["grant", "usage"]),
    ("UBILL", ["usage"], ["grant", "keys", "audit"]),
    ("UADMIN", ["grant", "keys", "policy set", "usage", "audit", "offboard"], []),
    ("UOWNER", ["grant", "keys", "audit"], []),
])
async def test_help_shows_only_what_the_caller_may_run(org: Harness, user: str, visible: list[str],
                                                       hidden: list[str]) -> None:
    answer = await org.command(user, ADMIN, "help")
    assert answer["response_type"] == "ephemeral"
    shown = text_of(answer)
    for name in visible:
        assert f"/claude-admin {name}" in shown
    for name in hidden:
        assert f"/claude-admin {name}" not in shown



async def test_a_refusal_reason_is_stored_plain_in_the_audit_log(org: Harness) -> None:
    """The reason's marks (bold role names) and mentions are Slack's to render, not the audit log's: exports and
    SIEM feeds read the words and bare IDs."""
    await org.command("UADMIN", ADMIN, "grant <@UNEW> owner")
    denied = [entry for entry in await org.audit() if entry.action == "denied"]
    reason = (denied[-1].detail or {})["reason"]
    assert reason == "Only an owner can grant or revoke owner."
    assert not any("\ue000" <= ch <= "\ue003" for ch in reason)

async def test_empty_text_is_help(org: Harness) -> None:
    assert "/claude-admin grant" in text_of(await org.command("UADMIN", ADMIN, ""))


@pytest.mark.parametrize(("user", "text"), [
    ("UVIEW", "grant <@UNEW> user"), ("UUSER", "grant <@UNEW> user"), ("UBILL", "grant <@UNEW> user"),
    ("UUSER", "usage"), ("UVIEW", "audit"), ("UBILL", "policy"), ("UBILL", "keys"), ("UUSER", "whois <@UADMIN>"),
    ("UBILL", "groups map <!subteam^S0001|@eng> user"), ("UUSER", "offboard <@UADMIN>"),
    ("UADMIN", "grant <@UNEW> admin"), ("UADMIN", "grant <@UNEW> owner"), ("UADMIN", "revoke <@UOWNER>"),
    ("UADMIN", "grant <@UOWNER> user"), ("UADMIN", "policy set admin max_tokens 100"),
    ("UADMIN", "policy set owner rpm_limit 1"), ("UADMIN", "grant <@UADMIN> owner"),
    ("UADMIN", "revoke <@UADMIN>"), ("UOWNER", "revoke <@UOWNER>"), ("UOWNER", "grant <@UOWNER> user"),
])
async def test_denied_attempts_change_nothing_and_are_audited(org: Harness, user: str, text: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command(user, ADMIN, text)
    assert ":no_entry:" in answer["text"]
    after = await org.table_snapshot()
    added = [row for row in after["audit_log"] if row not in before["audit_log"]]
    assert len(added) == 1 and added[0][3] == "denied" and added[0][2] == user
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items()
                                                                    if k != "audit_log"}
    assert org.slack.calls_to("chat.postMessage") == []  # nobody was told of a change


async def test_guest_with_an_admin_grant_has_no_admin_rights(org: Harness) -> None:
    org.slack.add_user("UGUEST", is_restricted=True)
    await org.grant("UGUEST", Role.ADMIN)
    answer = await org.command("UGUEST", ADMIN, "grant <@UNEW> user")
    assert ":no_entry:" in answer["text"]


# -- roles ------------------------------------------------------------------------------------------------
async def test_grant_and_revoke_tell_the_grantee_and_are_audited(org: Harness) -> None:
    answer = await org.command("UADMIN", ADMIN, "grant <@UNEW|newbie> power")
    assert "<@UNEW> now has the role *power*" in answer["text"]
    dm = org.slack.calls_to("chat.postMessage")[-1]
    assert dm["channel"] == "UNEW" and "*power*" in dm["text"] and "<@UADMIN>" in dm["text"]
    whois = text_of(await org.command("UADMIN", ADMIN, "whois UNEW"))
    assert "*power* (from an explicit grant)" in whois and "0 requests" in whois

    answer = await org.command("UADMIN", ADMIN, "revoke <@UNEW>")
    assert "no longer has the role *power*" in answer["text"] and "*viewer*" in text_of(answer)
    assert "removed your Claude Gate role *power*" in org.slack.calls_to("chat.postMessage")[-1]["text"]
    assert ("UADMIN", "grant", "UNEW") in await audit_actions(org)
    assert ("UADMIN", "revoke", "UNEW") in await audit_actions(org)
    again = await org.command("UADMIN", ADMIN, "revoke <@UNEW>")
    assert "has no explicit role" in again["text"]


async def test_owner_manages_admins_and_owners(org: Harness) -> None:
    assert "*admin*" in (await org.command("UOWNER", ADMIN, "grant <@UNEW> admin"))["text"]
    assert "*owner*" in (await org.command("UOWNER", ADMIN, "grant <@UNEW> owner"))["text"]
    # two owners now: the new one may revoke the old one, then is the last owner
    assert "no longer has the role *owner*" in (await org.command("UNEW", ADMIN, "revoke <@UOWNER>"))["text"]


async def test_users_lists_grants_by_role(org: Harness) -> None:
    everyone = text_of(await org.command("UADMIN", ADMIN, "users"))
    assert "4 users" in everyone and "<@UBILL>" in everyone
    users = text_of(await org.command("UADMIN", ADMIN, "users user"))
    assert "1 user" in users and "<@UUSER>" in users and "<@UBILL>" not in users


async def test_whois_shows_limits_usage_and_account_flags(org: Harness) -> None:
    await org.mention("UUSER", "hello")
    await org.settled_records(1)
    org.slack.add_user("UEXT", team_id="TOTHER")
    answer = text_of(await org.command("UADMIN", ADMIN, "whois <@UUSER>"))
    assert "haiku" in answer and "512" in answer and "1 request ·" in answer
    assert "Slack Connect" in text_of(await org.command("UADMIN", ADMIN, "whois UEXT"))


# -- groups -----------------------------------------------------------------------------------------------
async def test_group_mapping_gives_members_a_role_and_follows_membership(org: Harness) -> None:
    org.slack.add_usergroup("S0ENG", "eng", ["UNEW", "UVIEW"])
    answer = await org.command("UADMIN", ADMIN, "groups map <!subteam^S0ENG|@eng> power")
    assert "now have at least the role *power*" in answer["text"]
    whois = text_of(await org.command("UADMIN", ADMIN, "whois <@UNEW>"))
    assert "*power* (from user group @eng)" in whois
    await org.mention("UNEW", "--model opus hi")
    assert (await org.settled_records(1))[0].outcome == "ok"

    # Slack reports a member leaving: the shared table follows, and the role goes with it
    await org.send_event({"type": "subteam_members_changed", "subteam_id": "S0ENG", "added_users": ["UUSER"],
                          "removed_users": ["UNEW"], "date_previous_update": 1, "date_update": 2})

    async def members() -> set[str]:
        async with org.sessions() as session:
            return set(await session.scalars(select(GroupMember.slack_user_id)))

    await eventually(lambda: _equal(members(), {"UVIEW", "UUSER"}))
    assert "*viewer*" in text_of(await org.command("UADMIN", ADMIN, "whois <@UNEW>"))
    listing = text_of(await org.command("UADMIN", ADMIN, "groups"))
    assert "@eng" in listing and "*power*" in listing and "2 members" in listing

    # an explicit grant higher than the group wins; a lower one does not
    await org.command("UADMIN", ADMIN, "grant <@UVIEW> user")
    assert "*power* (from user group @eng)" in text_of(await org.command("UADMIN", ADMIN, "whois <@UVIEW>"))
    assert "no longer gives" in (await org.command("UADMIN", ADMIN, "groups unmap @eng"))["text"]
    assert "*user* (from an explicit grant)" in text_of(await org.command("UADMIN", ADMIN, "whois <@UVIEW>"))


async def _equal(awaitable, expected) -> bool:  # type: ignore[no-untyped-def]
    return await awaitable == expected


async def test_group_by_handle_and_unknown_group(org: Harness) -> None:
    org.slack.add_usergroup("S0OPS", "ops", ["UNEW"])
    assert "now have at least" in (await org.command("UADMIN", ADMIN, "groups map @ops user"))["text"]
    before = await org.table_snapshot()
    answer = await org.command("UADMIN", ADMIN, "groups map @nosuch user")
    assert "no user group @nosuch" in answer["text"]
    assert await org.table_snapshot() == before


async def test_admin_cannot_map_a_group_to_admin(org: Harness) -> None:
    org.slack.add_usergroup("S0ENG", "eng", ["UNEW"])
    assert ":no_entry:" in (await org.command("UADMIN", ADMIN, "groups map S0ENG admin"))["text"]
    assert "now have" in (await org.command("UOWNER", ADMIN, "groups map S0ENG admin"))["text"]
    assert ":no_entry:" in (await org.command("UADMIN", ADMIN, "groups unmap S0ENG"))["text"]


# -- policy -----------------------------------------------------------------------------------------------
async def test_policy_set_applies_to_the_next_request(org: Harness) -> None:
    answer = await org.command("UADMIN", ADMIN, "policy set user models haiku, sonnet")
    assert "*user* models: haiku → haiku, sonnet" in answer["text"]
    assert "max_tokens: 512 → 300" in (await org.command("UADMIN", ADMIN, "policy set user max_tokens 300"))["text"]
    await org.mention("UUSER", "--model sonnet hi")
    await org.settled_records(1)
    body = org.anthropic.last_body()
    assert (body["model"], body["max_tokens"]) == (org.runtime.settings.model_sonnet, 300)
    shown = text_of(await org.command("UADMIN", ADMIN, "policy user"))
    assert "haiku, sonnet" in shown and "max_tokens 300" in shown
    budget = await org.command("UADMIN", ADMIN, "policy set user daily_token_budget 5000")
    assert "none → 5,000" in budget["text"]
    assert "5,000 → none" in (await org.command("UADMIN", ADMIN, "policy set user daily_token_budget none"))["text"]
    actions = await audit_actions(org)
    assert actions.count(("UADMIN", "policy.set", "user")) == 4


@pytest.mark.parametrize(("text", "error"), [
    ("policy set user models gpt-4", "Unknown model `gpt-4`"),
    ("policy set user max_tokens lots", "max_tokens must be a whole number"),
    ("policy set user max_tokens 0", "max_tokens must be a whole number"),
    ("policy set user rpm_limit 99999999", "rpm_limit must be a whole number"),
    ("policy set user daily_token_budget -5", "daily_token_budget must be a whole number"),
    ("policy set user workspace nowhere", "No active API key in workspace `nowhere`"),
    ("policy set user workspace bad/name", "not a workspace name"),
])
async def test_bad_policy_values_change_nothing(org: Harness, text: str, error: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UADMIN", ADMIN, text)
    assert error in answer["text"]
    assert await org.table_snapshot() == before


async def test_policy_shows_every_role(org: Harness) -> None:
    shown = text_of(await org.command("UADMIN", ADMIN, "policy"))
    for role in Role:
        assert f"*{role}*" in shown


# -- reports ----------------------------------------------------------------------------------------------
async def test_usage_and_audit_reports(org: Harness) -> None:
    await org.mention("UUSER", "one")
    await org.mention("UVIEW", "two")  # refused: viewer
    await org.settled_records(2)
    usage = text_of(await org.command("UBILL", ADMIN, "usage"))
    assert "*1 request*" in usage and "*1* refused" in usage and "role cannot chat 1" in usage
    assert "<@UUSER>" in usage and "Usage of everyone, last 7 days" in usage
    assert "*1 request*" in text_of(await org.command("UBILL", ADMIN, "usage <@UUSER> days=30"))
    assert "*0 requests*" in text_of(await org.command("UBILL", ADMIN, "usage power"))
    await org.command("UADMIN", ADMIN, "grant <@UNEW> user")
    audit = text_of(await org.command("UADMIN", ADMIN, "audit 5"))
    assert "<@UADMIN> *grant* <@UNEW>" in audit


# -- /claude ----------------------------------------------------------------------------------------------
async def test_personal_status_model_and_usage(org: Harness) -> None:
    status = text_of(await org.command("UUSER", "/claude", "status"))
    assert "*user* (from an explicit grant)" in status and "10 of 10" in status and "`haiku`" in status
    refused = await org.command("UUSER", "/claude", "model opus")
    assert "may not use `opus`" in refused["text"] and "`haiku`" in refused["text"]
    await org.grant("UUSER", Role.POWER)
    assert "now `opus`" in (await org.command("UUSER", "/claude", "model opus"))["text"]
    async with org.sessions() as session:
        assert (await session.get(UserPreference, "UUSER")).preferred_model == "opus"
    await org.mention("UUSER", "hi")
    await org.settled_records(1)
    assert org.anthropic.last_body()["model"] == org.runtime.settings.model_opus
    status = text_of(await org.command("UUSER", "/claude", "status"))
    assert "59 of 60" in status and "Your model" in status and "`opus`" in status
    usage = text_of(await org.command("UUSER", "/claude", "usage"))
    assert "*Last 7 days*: 1 request ·" in usage and "*Last 30 days*: 1 request ·" in usage
    assert "/claude model" in text_of(await org.command("UVIEW", "/claude", "help"))
    assert "not with this role" in text_of(await org.command("UVIEW", "/claude", "status"))


async def test_status_shows_the_wait_when_the_minute_is_used_up(org: Harness) -> None:
    async with org.sessions.begin() as session:
        (await session.get(RolePolicyRow, "user")).rpm_limit = 1
    await org.mention("UUSER", "hi")
    await org.settled_records(1)
    org.clock.advance(15)
    status = text_of(await org.command("UUSER", "/claude", "status"))
    assert "0 of 1 · next slot in 45 s" in status


# -- App Home ---------------------------------------------------------------------------------------------
async def test_app_home_shows_status_and_an_overview_for_admins(org: Harness) -> None:
    await org.send_event({"type": "app_home_opened", "user": "UUSER", "channel": "DUUSER", "tab": "home"})
    await eventually(lambda: "UUSER" in org.slack.home_views)
    user_view = json.dumps(org.slack.home_views["UUSER"])
    assert "Your Claude Gate status" in user_view and "Overview" not in user_view
    await org.send_event({"type": "app_home_opened", "user": "UADMIN", "channel": "DUADMIN", "tab": "home"})
    await eventually(lambda: "UADMIN" in org.slack.home_views)
    admin_view = json.dumps(org.slack.home_views["UADMIN"])
    assert "Overview" in admin_view and "Keys due for rotation" in admin_view and "owner 1" in admin_view


# -- bad input --------------------------------------------------------------------------------------------
MALFORMED = [
    "frobnicate", "grant", "grant <@UNEW>", "grant UNEW emperor", "grant nobody user", "grant <@UNEW> user extra",
    "grant <#C123|general> user", "revoke", "revoke <@UNEW> now", "whois", "whois everyone", "users emperor",
    "users user admin", "groups map", "groups map @eng", "groups map <@UNEW> user", "groups map @eng emperor",
    "groups unmap", "groups frob", "keys add", "keys add prod", "keys add prod sk-ant-api03-secret",
    "keys add prod env:1BAD", "keys add prod env:KEY rotate_days=0", "keys add prod env:KEY rotate_days=soon",
    "keys add prod env:KEY colour=red", "keys add bad/label env:KEY", "keys revoke", "keys add p env:K workspace=a/b",
    "policy set", "policy set user", "policy set user models", "policy set emperor models haiku",
    "policy set user colour red", "policy emperor", "usage days=0", "usage days=-1", "usage days=x",
    "usage nobody", "usage all days=1 days=2", "audit 0", "audit many", "audit 5 6", "reminders now",
    "offboard", "offboard everyone", "help me", "keys add prod env:KEY rotate_days=1 rotate_days=2",
]


@pytest.mark.parametrize("text", MALFORMED)
async def test_malformed_admin_commands_answer_with_usage_and_change_nothing(org: Harness, text: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UOWNER", ADMIN, text)
    assert answer["text"].startswith(":warning:"), answer["text"]
    assert "Usage:" in answer["text"] and "/claude-admin" in answer["text"]
    assert "sk-ant-api03-secret" not in json.dumps(answer)
    assert await org.table_snapshot() == before


@pytest.mark.parametrize("text", ["model", "model gpt-9", "status now", "usage all", "frob", "model haiku sonnet"])
async def test_malformed_personal_commands_change_nothing(org: Harness, text: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UUSER", "/claude", text)
    assert answer["text"].startswith(":warning:")
    assert await org.table_snapshot() == before


async def test_long_lists_stay_within_slack_block_limits(org: Harness) -> None:
    for i in range(150):
        await org.grant(f"UBULK{i:04d}", Role.USER)
    answer = await org.command("UADMIN", ADMIN, "users")
    assert len(answer["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in answer["blocks"])
    assert "more" in text_of(answer)
