"""`/claude-admin keys …`, `reminders …` and `offboard` through the real app, fake Slack and fake Admin API."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update

from bot.domain.roles import Role
from bot.store.models import ApiKey, RoleGrant
from tests.support.harness import Harness, eventually

ADMIN = "/claude-admin"
ADMIN_KEY = "sk-ant-admin01-test"


def seen(answer: dict) -> str:
    return answer.get("text", "") + json.dumps(answer.get("blocks", []), ensure_ascii=False)


async def admins(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("U1", Role.POWER)):
        harness.slack.add_user(user, email=f"{user.lower()}@example.com")
        await harness.grant(user, role)
    return harness


async def test_add_list_revoke_and_the_next_request_uses_the_new_key(harness: Harness, monkeypatch) -> None:
    await admins(harness)
    monkeypatch.setenv("SECOND_KEY", "sk-ant-api03-second-key-secret-QrSt")
    added = await harness.command("UADMIN", ADMIN, "keys add second env:SECOND_KEY rotate_days=30")
    assert "Key *second* registered for workspace `default`" in seen(added)
    assert "…QrSt" in seen(added) and "second-key-secret" not in seen(added)
    listing = seen(await harness.command("UADMIN", ADMIN, "keys"))
    assert "second" in listing and "default" in listing and "second-key-secret" not in listing

    await harness.mention("U1", "which key?")
    await harness.settled_records(1)
    assert harness.anthropic.message_requests()[-1]["api_key"] == "sk-ant-api03-second-key-secret-QrSt"

    revoked = seen(await harness.command("UADMIN", ADMIN, "keys revoke second"))
    assert "Key *second* revoked" in revoked and "now uses `default`" in revoked
    await harness.mention("U1", "and now?")
    records = await harness.settled_records(2)
    assert harness.anthropic.message_requests()[-1]["api_key"] != "sk-ant-api03-second-key-secret-QrSt"
    assert [r.key_label for r in records] == ["second", "default"]
    audit = [(a.action, a.target) for a in await harness.audit()]
    assert ("keys.add", "second") in audit and any(action.startswith("keys.revoke") for action, _ in audit)


async def test_key_add_refuses_an_unset_variable_and_changes_nothing(harness: Harness) -> None:
    await admins(harness)
    before = await harness.table_snapshot()
    answer = await harness.command("UADMIN", ADMIN, "keys add ghost env:NOT_SET_ANYWHERE")
    assert answer["text"].startswith(":warning:") and "does not hold an Anthropic API key" in answer["text"]
    assert await harness.table_snapshot() == before


async def test_revoking_the_last_key_refuses_requests_and_alerts_admins(harness_factory) -> None:
    harness = await admins(await harness_factory(admin_alert_channel="CALERTS"))
    answer = seen(await harness.command("UOWNER", ADMIN, "keys revoke default"))
    assert "has no usable key now" in answer
    await harness.mention("U1", "anyone there?")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "no_active_key"
    assert harness.anthropic.message_requests() == []
    await eventually(lambda: any(c.get("channel") == "CALERTS" for c in harness.slack.calls_to("chat.postMessage")))


async def test_revoke_deactivates_at_anthropic_and_reports_an_admin_api_failure(harness_factory, monkeypatch) -> None:
    harness = await admins(await harness_factory(anthropic_admin_key=ADMIN_KEY))
    harness.anthropic.add_org_key("apikey_01", "team key", hint="sk-ant-api03-…QrSt")
    monkeypatch.setenv("TEAM_KEY", "sk-ant-api03-team-key-secret-QrSt")
    await harness.command("UADMIN", ADMIN, "keys add team env:TEAM_KEY anthropic_id=apikey_01")
    answer = seen(await harness.command("UADMIN", ADMIN, "keys revoke team"))
    assert "Key *team* revoked" in answer
    assert harness.anthropic.org_keys["apikey_01"]["status"] == "inactive"

    harness.anthropic.add_org_key("apikey_02", "other key")
    monkeypatch.setenv("OTHER_KEY", "sk-ant-api03-other-key-secret-MnOp")
    await harness.command("UADMIN", ADMIN, "keys add other env:OTHER_KEY anthropic_id=apikey_02")
    harness.anthropic.fail_next("admin_server", times=5)
    answer = seen(await harness.command("UADMIN", ADMIN, "keys revoke other"))
    assert "Key *other* revoked" in answer  # the local revoke stands even when Anthropic fails
    async with harness.sessions() as session:
        assert (await session.scalar(select(ApiKey.status).where(ApiKey.label == "other"))) == "revoked"


async def test_sync_imports_organisation_keys(harness_factory) -> None:
    harness = await admins(await harness_factory(anthropic_admin_key=ADMIN_KEY))
    for i in range(3):
        harness.anthropic.add_org_key(f"apikey_{i:02d}", f"service {i}")
    answer = seen(await harness.command("UADMIN", ADMIN, "keys sync"))
    assert "Read *3* organisation keys" in answer
    assert "service-1" in seen(await harness.command("UADMIN", ADMIN, "keys"))


async def test_sync_without_an_admin_key_is_a_clear_error(harness: Harness) -> None:
    await admins(harness)
    answer = await harness.command("UADMIN", ADMIN, "keys sync")
    assert answer["text"].startswith(":warning:") and "ANTHROPIC_ADMIN_KEY" in answer["text"]


async def test_reminders_schedule_and_run(harness_factory) -> None:
    harness = await admins(await harness_factory(reminder_channel="CREMIND"))
    async with harness.sessions.begin() as session:
        await session.execute(update(ApiKey).where(ApiKey.label == "default")
                              .values(created_at=harness.clock() - timedelta(days=85)))
    schedule = seen(await harness.command("UADMIN", ADMIN, "reminders"))
    assert "0 9 * * 1-5" in schedule and "<#CREMIND>" in schedule and "default" in schedule
    ran = seen(await harness.command("UADMIN", ADMIN, "reminders run"))
    assert "Posted 1 key" in ran
    posted = [c for c in harness.slack.calls_to("chat.postMessage") if c.get("channel") == "CREMIND"]
    assert len(posted) == 1 and "default" in json.dumps(posted[0])
    again = seen(await harness.command("UADMIN", ADMIN, "reminders run"))
    assert "Already reminded today" in again  # once per day


async def test_offboard_revokes_the_role_and_deactivates_their_keys(harness_factory) -> None:
    harness = await admins(await harness_factory(anthropic_admin_key=ADMIN_KEY))
    harness.anthropic.add_org_user("user_u1", "u1@example.com", "U One")
    harness.anthropic.add_org_key("apikey_u1", "u1's key", created_by="user_u1")
    harness.anthropic.add_org_key("apikey_other", "someone else's", created_by="user_other")
    answer = seen(await harness.command("UADMIN", ADMIN, "offboard <@U1>"))
    assert "Offboarded <@U1>" in answer
    async with harness.sessions() as session:
        assert await session.get(RoleGrant, "U1") is None
    assert harness.anthropic.org_keys["apikey_u1"]["status"] == "inactive"
    assert harness.anthropic.org_keys["apikey_other"]["status"] == "active"
    assert any(a.action.startswith("offboard") for a in await harness.audit())


async def test_admin_cannot_offboard_an_owner(harness: Harness) -> None:
    await admins(harness)
    before = await harness.table_snapshot()
    answer = await harness.command("UADMIN", ADMIN, "offboard <@UOWNER>")
    assert ":no_entry:" in answer["text"]
    after = await harness.table_snapshot()
    assert after["role_grants"] == before["role_grants"]
    assert any(row[3] == "denied" for row in after["audit_log"] if row not in before["audit_log"])
