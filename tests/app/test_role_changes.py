"""Every role change is judged on the target's effective role, whatever its source (docs/admin.md),
and the last owner cannot disappear (item 3; the multi-process proof is tests/processes/test_last_owner.py)."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.domain.commands import ADMIN
from bot.domain.roles import Role
from bot.store.models import RoleGrant
from tests.support.harness import Harness

ADMIN_KEY = "sk-ant-admin01-test"


def seen(answer: dict) -> str:
    return answer.get("text", "") + json.dumps(answer.get("blocks", []), ensure_ascii=False)


async def org(harness: Harness) -> Harness:
    """UOWNER (explicit owner), UADMIN (explicit admin); UGOWNER is an owner and UGADMIN an admin through mapped
    user groups only; UGOWNER also has an explicit `user` grant and created a key at Anthropic."""
    for user in ("UOWNER", "UADMIN", "UGOWNER", "UGADMIN", "UNEW"):
        harness.slack.add_user(user, email=f"{user.lower()}@example.com")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.grant("UADMIN", Role.ADMIN)
    harness.slack.add_usergroup("S0OWNERS", "owners", ["UGOWNER"])
    harness.slack.add_usergroup("S0ADMINS", "admins", ["UGADMIN", "UADMIN"])
    for group, role in (("<!subteam^S0OWNERS|@owners>", "owner"), ("<!subteam^S0ADMINS|@admins>", "admin")):
        assert ":white_check_mark:" in (await harness.command("UOWNER", ADMIN, f"groups map {group} {role}"))["text"]
    await harness.grant("UGOWNER", Role.USER)
    harness.anthropic.add_org_user("user_gowner", "ugowner@example.com", "Group Owner")
    harness.anthropic.add_org_key("apikey_gowner", "group owner's key", created_by="user_gowner")
    harness.anthropic.add_org_user("user_gadmin", "ugadmin@example.com", "Group Admin")
    harness.anthropic.add_org_key("apikey_gadmin", "group admin's key", created_by="user_gadmin")
    return harness


async def test_an_admin_cannot_change_or_offboard_an_owner_or_admin_from_a_group(harness_factory) -> None:
    harness = await org(await harness_factory(anthropic_admin_key=ADMIN_KEY))
    before = await harness.table_snapshot()
    attempts = [
        ("UADMIN", "offboard <@UGOWNER>"), ("UADMIN", "revoke <@UGOWNER>"), ("UADMIN", "grant <@UGOWNER> power"),
        ("UADMIN", "grant <@UGOWNER> power for=1d"), ("UADMIN", "offboard <@UGADMIN>"),
        ("UADMIN", "grant <@UGADMIN> user"), ("UADMIN", "offboard <@UADMIN>"), ("UGADMIN", "offboard <@UGADMIN>"),
        ("UGADMIN", "revoke <@UOWNER>"),
    ]
    for actor, text in attempts:
        answer = await harness.command(actor, ADMIN, text)
        assert answer["text"].startswith(":no_entry:"), (actor, text, answer["text"])
    after = await harness.table_snapshot()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items()
                                                                    if k != "audit_log"}
    assert {row[3] for row in after["audit_log"] if row not in before["audit_log"]} == {"denied"}
    assert harness.anthropic.org_keys["apikey_gowner"]["status"] == "active"  # nothing deactivated at Anthropic
    assert harness.anthropic.org_keys["apikey_gadmin"]["status"] == "active"
    assert not [r for r in harness.anthropic.admin_requests if r["method"] == "POST"]
    denial = seen(await harness.command("UADMIN", ADMIN, "offboard <@UGOWNER>"))
    assert "owner" in denial and "@owners" in denial  # says why: the role and where it comes from


async def test_an_owner_offboards_a_group_owner_and_is_told_the_group_role_stays(harness_factory) -> None:
    harness = await org(await harness_factory(anthropic_admin_key=ADMIN_KEY))
    answer = seen(await harness.command("UOWNER", ADMIN, "offboard <@UGOWNER>"))
    assert "Offboarded <@UGOWNER>" in answer and "owners" in answer, answer
    assert harness.anthropic.org_keys["apikey_gowner"]["status"] == "inactive"
    async with harness.sessions() as session:
        assert await session.get(RoleGrant, "UGOWNER") is None


async def test_an_admin_still_manages_roles_below_admin(harness: Harness) -> None:
    await org(harness)
    harness.slack.add_usergroup("S0USERS", "users", ["UNEW"])
    await harness.command("UOWNER", ADMIN, "groups map <!subteam^S0USERS|@users> power")
    assert ":white_check_mark:" in (await harness.command("UADMIN", ADMIN, "grant <@UNEW> user"))["text"]
    assert ":white_check_mark:" in (await harness.command("UADMIN", ADMIN, "revoke <@UNEW>"))["text"]
    assert "Offboarded <@UNEW>" in seen(await harness.command("UADMIN", ADMIN, "offboard <@UNEW>"))


async def test_the_last_explicit_owner_stays_even_with_a_group_owner(harness: Harness) -> None:
    """Owners from a group can vanish with a Slack change: the invariant counts permanent explicit owner grants."""
    await org(harness)
    for text in ("revoke <@UOWNER>", "grant <@UOWNER> admin", "offboard <@UOWNER>"):
        answer = await harness.command("UGOWNER", ADMIN, text)
        assert answer["text"].startswith(":no_entry:") and "last owner" in answer["text"], (text, answer["text"])
    async with harness.sessions() as session:
        owners = list(await session.scalars(select(RoleGrant.slack_user_id).where(RoleGrant.role == "owner")))
    assert owners == ["UOWNER"]
