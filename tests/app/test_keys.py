"""API keys: registry rules, secrecy, revoke (in every process), Admin API deactivation and sync, offboarding,
key failures alerted once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.domain.keys import NOT_AN_API_KEY
from bot.domain.roles import Role
from bot.services.access.roles import RoleChangeDenied
from bot.services.keys.choice import KEY_RECOVERY_QUIET
from bot.services.keys.offboarding import Offboarding
from bot.services.keys.registry import KeyCommandError, KeyRegistry, StepOutcome, ensure_default_key
from bot.services.keys.reminders import Reminders
from bot.services.keys.sync import OrgKeys
from bot.slack import render_keys
from bot.slack.mrkdwn import mrkdwn
from bot.store.models import ApiKey, AuditEntry, RoleGrant
from bot.terminal import plain
from tests.support.fakes.anthropic import DEFAULT_ADMIN_KEY
from tests.support.harness import API_KEY, Harness, eventually

NEW_SECRET = "sk-ant-api03-new-workspace-key-Zq9X"
OTHER_SECRET = "sk-ant-api03-research-key-Rr77"


async def add(h: Harness, label: str, env_var: str, **options: Any) -> Any:
    return await h.service(KeyRegistry).add_key(actor_id="UADMIN", label=label, env_var=env_var, **options)


async def revoke(h: Harness, label: str) -> Any:
    return await h.service(KeyRegistry).revoke_key(actor_id="UADMIN", label=label)


async def key_row(h: Harness, label: str) -> ApiKey:
    async with h.sessions() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.label == label))
    assert row is not None
    return row


async def status_is(h: Harness, label: str, status: str) -> bool:
    return (await key_row(h, label)).status == status


async def audit_actions(h: Harness) -> list[str]:
    return [entry.action for entry in await h.audit()]


async def ask(h: Harness, user: str = "U1", text: str = "hello") -> Any:
    count = len(await h.records())
    await h.mention(user, text)
    return (await h.settled_records(count + 1))[-1]


async def chatting_user(h: Harness, user: str = "U1") -> None:
    h.slack.add_user(user)
    await h.grant(user, Role.USER)


# -- registry rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "env_var", "options", "phrase"), [  # the grammar: tests/app/test_key_registration.py
    ("new", "UNSET_KEY_VAR", {}, NOT_AN_API_KEY),
    ("default", "NEW_KEY", {}, "Key `default` exists already"),
    ("new", "ANTHROPIC_API_KEY", {}, "is already key `default`"),
    ("new", "SAME_AS_DEFAULT", {}, "holds the same key as `default`"),
    ("new", "ADMIN_IN_VAR", {}, NOT_AN_API_KEY),
])
async def test_add_refuses_what_the_admin_can_fix(harness: Harness, monkeypatch: pytest.MonkeyPatch, label: str,
                                                  env_var: str, options: dict[str, Any], phrase: str) -> None:
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    monkeypatch.setenv("SAME_AS_DEFAULT", API_KEY)
    monkeypatch.setenv("ADMIN_IN_VAR", "sk-ant-admin01-someone-pasted-this")
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    before = await harness.table_snapshot()
    with pytest.raises(KeyCommandError) as refused:
        await add(harness, label, env_var, **options)
    assert mrkdwn(phrase) in mrkdwn(str(refused.value)) and "\n" not in str(refused.value)
    assert await harness.table_snapshot() == before  # nothing changed


async def test_add_registers_the_variable_not_the_secret(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESEARCH_KEY", OTHER_SECRET)
    harness.clock.advance(1)
    added = await add(harness, "research", "RESEARCH_KEY", workspace="research", rotate_days=30)
    assert added.key.hint == "sk-ant-api03-…Rr77" and added.key.env_var == "RESEARCH_KEY"
    assert added.key.in_use and added.replaces is None
    assert added.key.rotation.rotate_by == (harness.clock() + timedelta(days=30)).date()
    assert any("No role uses workspace `research`" in mrkdwn(note) for note in added.notes)
    row = await key_row(harness, "research")
    assert (row.workspace, row.env_var, row.status, row.created_by) == ("research", "RESEARCH_KEY", "active", "UADMIN")
    (entry,) = [e for e in await harness.audit() if e.action == "keys.add" and e.target == "research"]
    assert entry.actor == "UADMIN" and entry.detail["env_var"] == "RESEARCH_KEY"


async def test_list_shows_label_workspace_hint_age_and_rotate_by(harness: Harness,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    harness.clock.advance(86_400 * 3)
    await add(harness, "new", "NEW_KEY")
    await revoke(harness, "default")
    listing = await harness.service(KeyRegistry).list_keys()
    by_label = {key.label: key for key in listing.keys}
    assert [key.label for key in listing.keys] == ["new", "default"]  # usable first
    assert by_label["default"].rotation.age_days == 3 and by_label["default"].status == "revoked"
    assert by_label["new"].in_use and not by_label["default"].in_use
    text, blocks = render_keys.key_list(listing)
    rendered = text + json.dumps(blocks, ensure_ascii=False)
    assert "sk-ant-api03-…Zq9X" in rendered and NEW_SECRET not in rendered and API_KEY not in rendered
    assert f"rotate by {by_label['new'].rotation.rotate_by:%Y-%m-%d}" in rendered
    assert len(blocks) <= 50 and all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)


# -- which key serves a request, and revoke -----------------------------------------------------------------


async def test_the_newest_active_key_serves_and_every_request_records_its_label(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await chatting_user(harness)
    assert (await ask(harness)).key_label == "default"
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    harness.clock.advance(1)
    added = await add(harness, "new", "NEW_KEY")
    assert added.replaces == "default" and any("keys revoke default" in note for note in added.notes)
    harness.clock.advance(1)
    assert (await ask(harness)).key_label == "new"
    assert harness.anthropic.message_requests()[-1]["api_key"] == NEW_SECRET


async def test_a_revoked_key_is_never_used_again_by_any_process(harness_factory, monkeypatch) -> None:
    first = await harness_factory()
    second = await harness_factory()  # another app with its own engine on the same database: another process
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    await chatting_user(first)
    first.clock.advance(1)
    await add(first, "new", "NEW_KEY")
    first.clock.advance(1)
    assert (await ask(second)).key_label == "new"  # the second process sees the new key at once
    revoked = await revoke(first, "new")
    assert revoked.now_in_use == "default"
    assert revoked.steps[0].outcome == StepOutcome.DONE
    for h in (first, second, second, first):
        h.clock.advance(1)
        assert (await ask(h)).key_label == "default"
    uses = [r for r in first.anthropic.message_requests() if r["api_key"] == NEW_SECRET]
    assert len(uses) == 1  # only the request before the revoke
    assert "keys.revoke" in await audit_actions(first)


async def test_revoking_the_last_key_refuses_records_and_alerts_once_an_hour(harness_factory) -> None:
    h = await harness_factory(admin_alert_channel="CALERT")
    await chatting_user(h)
    revoked = await revoke(h, "default")
    assert revoked.now_in_use is None
    text, _ = render_keys.key_revoked(revoked)
    assert "has no usable key now" in text
    for _ in range(3):
        await h.mention("U1", "hello")
    await eventually(lambda: len(h.ephemerals_for("U1")) == 3)
    assert all("No usable API key" in e["text"] for e in h.ephemerals_for("U1"))
    records = await h.records()
    assert [(r.outcome, r.refusal_reason, r.key_label) for r in records] == [("refused", "no_active_key", None)] * 3
    assert not h.anthropic.message_requests()
    alerts = h.slack.bot_messages("CALERT")
    assert len(alerts) == 1 and "workspace `default`" in alerts[0]["text"] and "revoked" in alerts[0]["text"]
    h.clock.advance(3601)
    await h.mention("U1", "an hour later")
    await eventually(lambda: len(h.slack.bot_messages("CALERT")) == 2)


async def test_a_key_whose_variable_is_missing_in_this_process_is_skipped(harness: Harness,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    await chatting_user(harness)
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    harness.clock.advance(1)
    await add(harness, "new", "NEW_KEY")
    monkeypatch.delenv("NEW_KEY")  # e.g. a process started without it
    assert (await ask(harness)).key_label == "default"
    listing = await harness.service(KeyRegistry).list_keys()
    new = next(key for key in listing.keys if key.label == "new")
    assert not new.env_var_set and ":warning: `NEW_KEY` unset here" in json.dumps(render_keys.key_list(listing)[1])


# -- Admin API: deactivate on revoke, sync -------------------------------------------------------------------


async def test_revoke_deactivates_the_key_at_anthropic(harness_factory, monkeypatch) -> None:
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    h.anthropic.add_org_key("apikey_01new", "gate-new", hint="sk-ant-api03-Zq9...Zq9X",
                            created_at=datetime(2025, 12, 1, tzinfo=UTC))
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    added = await add(h, "new", "NEW_KEY", anthropic_id="apikey_01new")
    assert added.key.hint == "sk-ant-api03-Zq9...Zq9X"  # Anthropic's own hint
    assert added.key.created_at == datetime(2025, 12, 1, tzinfo=UTC)  # the key's real age counts
    revoked = await revoke(h, "new")
    assert [(s.what, s.outcome) for s in revoked.steps] == [("Claude Gate", "done"), ("Anthropic", "done")]
    assert h.anthropic.org_keys["apikey_01new"]["status"] == "inactive"
    (update_call,) = [r for r in h.anthropic.admin_requests if r["method"] == "POST"]
    assert update_call["path"] == "/v1/organizations/api_keys/apikey_01new"
    assert update_call["body"] == {"status": "inactive"}
    assert update_call["headers"]["Authorization"] == f"Bearer {DEFAULT_ADMIN_KEY}"  # how the SDK sends the key
    assert (await key_row(h, "new")).anthropic_status == "inactive"
    deactivations = [e for e in await h.audit() if e.action == "keys.deactivate"]
    assert [e.detail["outcome"] for e in deactivations] == ["inactive"]


async def test_a_failed_admin_api_call_is_reported_and_the_local_revoke_stays(harness_factory, monkeypatch) -> None:
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    h.anthropic.add_org_key("apikey_01new", "gate-new")
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    await add(h, "new", "NEW_KEY", anthropic_id="apikey_01new")
    h.anthropic.fail_next("admin_server", should_retry=False)
    revoked = await revoke(h, "new")
    assert [s.outcome for s in revoked.steps] == ["done", "failed"]
    assert "HTTP 500" in revoked.steps[1].detail and "run `keys revoke new` again" in mrkdwn(revoked.steps[1].detail)
    assert (await key_row(h, "new")).status == "revoked"
    assert h.anthropic.org_keys["apikey_01new"]["status"] == "active"
    _text, blocks = render_keys.key_revoked(revoked)
    assert ":x: *Anthropic*" in json.dumps(blocks)
    again = await revoke(h, "new")  # retries the Anthropic step
    assert [s.outcome for s in again.steps] == ["done", "done"] and "already revoked" in again.steps[0].detail
    assert h.anthropic.org_keys["apikey_01new"]["status"] == "inactive"
    outcomes = [e.detail["outcome"] for e in await h.audit() if e.action == "keys.deactivate"]
    assert outcomes == ["failed", "inactive"]


async def test_revoke_without_the_admin_api_says_what_to_do(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    await add(harness, "new", "NEW_KEY", anthropic_id="apikey_01new")
    revoked = await revoke(harness, "new")
    assert revoked.steps[1].outcome == "skipped" and "ANTHROPIC_ADMIN_KEY is not set" in revoked.steps[1].detail
    assert "no Anthropic key id" in (await revoke(harness, "default")).steps[1].detail
    with pytest.raises(KeyCommandError) as refused:
        await revoke(harness, "nope")
    assert "There is no key `nope`" in mrkdwn(str(refused.value))


async def test_sync_pages_through_every_organisation_key(harness_factory, monkeypatch) -> None:
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    fake = h.anthropic
    fake.add_org_user("user_01ana", "ana@example.com", "Ana")
    fake.add_org_key("apikey_used", "gate-prod", workspace_id="wrkspc_01prod", created_by="user_01ana")
    for n in range(203):
        fake.add_org_key(f"apikey_{n:04d}", "ci key" if n % 2 else f"svc-{n}", created_by="user_01ana" if n < 3
                         else "svac_01robot", status="archived" if n == 7 else "active",
                         workspace_id="wrkspc_01prod" if n == 5 else None)
    fake.add_org_key("apikey_gone", "gate-old")
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    await add(h, "prod", "NEW_KEY", workspace="prod", anthropic_id="apikey_used")
    fake.org_keys["apikey_used"]["status"] = "inactive"  # someone deactivated it in the Console
    del fake.org_keys["apikey_gone"]
    async with h.sessions.begin() as session:
        session.add(ApiKey(label="old", workspace="default", anthropic_key_id="apikey_gone", created_at=h.clock(),
                           rotate_days=90, status="active"))
    result = await h.service(OrgKeys).sync_keys(actor_id="UADMIN")
    assert (result.pages, result.seen, len(result.added), result.updated) == (3, 204, 203, ["prod"])
    assert result.retired == ["prod"] and result.missing == ["old"]
    listed = [r for r in fake.admin_requests if r["path"] == "/v1/organizations/api_keys"]
    assert [r["query"].get("after_id") for r in listed] == [None, "apikey_0098", "apikey_0198"]
    assert {r["query"]["limit"] for r in listed} == {"100"}
    async with h.sessions() as session:
        rows = {row.anthropic_key_id: row for row in await session.scalars(select(ApiKey))}
    first = rows["apikey_0000"]
    assert (first.label, first.env_var, first.status, first.anthropic_name) == ("svc-0", None, "active", "svc-0")
    assert first.key_hint == fake.org_keys["apikey_0000"]["partial_key_hint"]
    assert first.creator_email == "ana@example.com" and first.anthropic_creator_id == "user_01ana"
    assert first.created_at == datetime.fromisoformat(fake.org_keys["apikey_0000"]["created_at"])
    assert rows["apikey_0007"].status == "archived"
    assert rows["apikey_0005"].workspace == "prod"  # the Anthropic workspace of a registered key keeps its name
    assert rows["apikey_0009"].workspace == fake.default_workspace_id
    ci_labels = sorted(row.label for row in rows.values() if row.anthropic_name == "ci key")
    assert len(ci_labels) == len(set(ci_labels)) == 101 and "ci-key" in ci_labels  # names made unique labels
    assert rows["apikey_used"].status == "inactive"  # no longer used for requests
    assert (await audit_actions(h)).count("keys.sync") == 1


async def test_sync_needs_the_admin_key_and_changes_nothing_when_the_api_fails(harness_factory) -> None:
    plain = await harness_factory()
    with pytest.raises(KeyCommandError, match="ANTHROPIC_ADMIN_KEY"):
        await plain.service(OrgKeys).sync_keys(actor_id="UADMIN")
    h = await harness_factory(anthropic_admin_key="sk-ant-admin01-wrong")
    h.anthropic.add_org_key("apikey_1", "one")
    before = await h.table_snapshot()
    with pytest.raises(KeyCommandError, match="refused ANTHROPIC_ADMIN_KEY"):
        await h.service(OrgKeys).sync_keys(actor_id="UADMIN")
    assert await h.table_snapshot() == before


# -- offboarding ---------------------------------------------------------------------------------------------


async def test_offboard_revokes_the_role_and_deactivates_their_anthropic_keys(harness_factory, monkeypatch) -> None:
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    h.slack.add_user("U0LEAVER", email="leaver@example.com")
    await h.grant("U0LEAVER", Role.POWER)
    h.anthropic.add_org_user("user_01leaver", "leaver@example.com", "Leaver")
    h.anthropic.add_org_user("user_01stays", "stays@example.com", "Stays")
    h.anthropic.add_org_key("apikey_l1", "leaver-laptop", created_by="user_01leaver")
    h.anthropic.add_org_key("apikey_l2", "leaver-gate", created_by="user_01leaver")
    h.anthropic.add_org_key("apikey_l3", "leaver-old", created_by="user_01leaver", status="inactive")
    h.anthropic.add_org_key("apikey_s1", "stays-key", created_by="user_01stays")
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    h.clock.advance(1)
    await add(h, "leaver-gate", "NEW_KEY", anthropic_id="apikey_l2")  # Claude Gate uses one of their keys
    result = await h.service(Offboarding).offboard_user(actor_id="UADMIN", actor_role=Role.ADMIN, user_id="U0LEAVER")
    assert result.previous_role == Role.POWER and result.anthropic_user_id == "user_01leaver"
    assert sorted(result.deactivated) == ["leaver-gate (apikey_l2)", "leaver-laptop (apikey_l1)"]
    assert [s.outcome for s in result.steps] == ["done", "done"]
    statuses = {key_id: key["status"] for key_id, key in h.anthropic.org_keys.items()}
    assert statuses == {"apikey_l1": "inactive", "apikey_l2": "inactive", "apikey_l3": "inactive",
                        "apikey_s1": "active"}
    async with h.sessions() as session:
        assert await session.get(RoleGrant, "U0LEAVER") is None
    assert (await key_row(h, "leaver-gate")).status == "revoked"  # Claude Gate stops using it at once
    actions = await audit_actions(h)
    assert actions.count("keys.deactivate") == 2 and "revoke" in actions and actions[-1] == "offboard"
    text, blocks = render_keys.offboarded(result)
    assert "leaver-laptop" in json.dumps(blocks) and "Offboarded U0LEAVER" in text


async def test_offboard_refused_changes_nothing(harness_factory) -> None:
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    h.slack.add_user("U0BOSS", email="boss@example.com")
    await h.grant("U0BOSS", Role.OWNER)
    before = await h.table_snapshot()
    with pytest.raises(RoleChangeDenied, match="Only an owner"):
        await h.service(Offboarding).offboard_user(actor_id="UADMIN", actor_role=Role.ADMIN, user_id="U0BOSS")
    assert await h.table_snapshot() == before and not h.anthropic.admin_requests


async def test_offboard_without_the_admin_api_or_a_match_reports_each_step(harness_factory) -> None:
    plain = await harness_factory()
    plain.slack.add_user("U0GONE", email="gone@example.com")
    await plain.grant("U0GONE", Role.USER)
    result = await plain.service(Offboarding).offboard_user(actor_id="UADMIN", actor_role=Role.ADMIN, user_id="U0GONE")
    assert [s.outcome for s in result.steps] == ["done", "skipped"]
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    h.slack.add_user("U0NOACCT", email="no-account@example.com")
    result = await h.service(Offboarding).offboard_user(actor_id="UADMIN", actor_role=Role.ADMIN, user_id="U0NOACCT")
    assert result.previous_role is None and "no member of the Anthropic organisation" in result.steps[1].detail
    h.slack.fail_next("users.info", "user_not_found")
    result = await h.service(Offboarding).offboard_user(actor_id="UADMIN", actor_role=Role.ADMIN, user_id="U0NOACCT")
    assert result.steps[1].outcome == "failed" and "user_not_found" in result.steps[1].detail


# -- key failures --------------------------------------------------------------------------------------------


async def test_a_401_marks_the_key_failing_and_alerts_once(harness_factory) -> None:
    first = await harness_factory(admin_alert_channel="CALERT")
    second = await harness_factory(admin_alert_channel="CALERT")
    await chatting_user(first)
    first.anthropic.fail_next("auth", times=4)
    for h in (first, first, second, second):
        record = await ask(h)
        assert (record.outcome, record.error_type, record.key_label) == ("error", "key", "default")
    await eventually(lambda: len(first.slack.posted_texts("C0001")) == 4)
    assert all("API key" in text for text in first.slack.posted_texts("C0001"))  # one friendly line each
    alerts = first.slack.bot_messages("CALERT")
    assert len(alerts) == 1 and "`default`" in alerts[0]["text"] and "401" in alerts[0]["text"]
    assert (await key_row(first, "default")).status == "failing"
    assert (await audit_actions(first)).count("keys.failing") == 1


async def test_a_failing_key_that_gets_through_again_is_active_again_and_admins_are_told_once(harness_factory) -> None:
    """A 401 can pass: the key was re-activated in the Console, or Anthropic had a bad minute. A request made after
    KEY_RECOVERY_QUIET without refusals that gets through marks the key active again, whichever process makes it,
    and admins hear it once."""
    first = await harness_factory(admin_alert_channel="CALERT")
    second = await harness_factory(admin_alert_channel="CALERT")
    await chatting_user(first)
    first.anthropic.fail_next("auth")
    assert (await ask(first)).error_type == "key"
    assert (await key_row(first, "default")).status == "failing"
    record = await ask(second)  # the key is the workspace's only one, so it is still tried
    assert (record.outcome, record.key_label) == ("ok", "default")
    assert (await key_row(first, "default")).status == "failing"  # one minute of success proves little
    first.clock.advance(KEY_RECOVERY_QUIET.total_seconds() + 1)
    assert (await ask(second)).outcome == "ok"
    await eventually(lambda: status_is(first, "default", "active"))  # marked after the answer's record
    assert (await ask(first)).outcome == "ok"
    await eventually(lambda: len(first.slack.bot_messages("CALERT")) >= 2)  # posted once the change is committed
    alerts = [m["text"] for m in first.slack.bot_messages("CALERT")]
    assert len(alerts) == 2 and "refused" in alerts[0] and "works again" in alerts[1] and "`default`" in alerts[1]
    assert (await audit_actions(first)).count("keys.recovered") == 1


async def test_a_key_refused_on_and_off_stays_failing_and_alerts_once(harness_factory) -> None:
    harness = await harness_factory(admin_alert_channel="CALERT")
    await chatting_user(harness)
    quiet = KEY_RECOVERY_QUIET.total_seconds()
    for _ in range(3):  # refused every few minutes, accepted in between: never long enough to be trusted again
        harness.anthropic.fail_next("auth")
        assert (await ask(harness)).error_type == "key"
        harness.clock.advance(quiet - 60)
        assert (await ask(harness)).outcome == "ok"
        assert (await key_row(harness, "default")).status == "failing"
    assert len(harness.slack.bot_messages("CALERT")) == 1
    assert (await audit_actions(harness)).count("keys.failing") == 1
    assert "keys.recovered" not in await audit_actions(harness)
    harness.clock.advance(120)  # now quiet long enough
    assert (await ask(harness)).outcome == "ok"
    await eventually(lambda: status_is(harness, "default", "active"))


async def test_active_keys_are_preferred_to_failing_ones(harness: Harness, monkeypatch) -> None:
    await chatting_user(harness)
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    harness.clock.advance(1)
    await add(harness, "new", "NEW_KEY")
    harness.anthropic.fail_next("permission")
    assert (await ask(harness)).key_label == "new"
    assert (await key_row(harness, "new")).status == "failing"
    assert (await ask(harness)).key_label == "default"  # older, but active


async def test_a_failing_default_key_recovers_when_its_variable_holds_a_new_key(harness: Harness,
                                                                                monkeypatch) -> None:
    async with harness.sessions.begin() as session:
        await session.execute(update(ApiKey).where(ApiKey.label == "default").values(status="failing"))
    async with harness.sessions.begin() as session:
        await ensure_default_key(session, harness.clock, rotate_days=90)
    assert (await key_row(harness, "default")).status == "failing"  # same key: still failing
    monkeypatch.setenv("ANTHROPIC_API_KEY", NEW_SECRET)
    async with harness.sessions.begin() as session:
        await ensure_default_key(session, harness.clock, rotate_days=90)
    row = await key_row(harness, "default")
    assert (row.status, row.key_hint) == ("active", "sk-ant-api03-…Zq9X")
    assert "keys.recovered" in await audit_actions(harness)


# -- secrecy -------------------------------------------------------------------------------------------------


async def test_no_secret_reaches_slack_logs_or_the_database(harness_factory, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    h = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY, admin_alert_channel="CALERT",
                              reminder_channel="CREMIND")
    h.slack.add_user("U0LEAVER", email="leaver@example.com")
    h.anthropic.add_org_user("user_01leaver", "leaver@example.com", "Leaver")
    h.anthropic.add_org_key("apikey_new", "gate-new", created_by="user_01leaver",
                            created_at=h.clock() - timedelta(days=200))
    await chatting_user(h)
    h.clock.advance(1)
    added = await add(h, "new", "NEW_KEY", anthropic_id="apikey_new", rotate_days=30)
    answers = [render_keys.key_added(added)]
    answers.append(render_keys.key_list(await h.service(KeyRegistry).list_keys()))
    answers.append(render_keys.key_sync(await h.service(OrgKeys).sync_keys(actor_id="UADMIN")))
    await ask(h)
    h.anthropic.fail_next("auth")
    await ask(h)  # key failure: alert
    run = await h.service(Reminders).run_reminders(actor_id="UADMIN")
    assert [key.label for key in run.reminded] == ["new"]
    answers.append(render_keys.reminder_run(run))
    answers.append(render_keys.key_revoked(await revoke(h, "new")))
    answers.append(render_keys.offboarded(await h.service(Offboarding).offboard_user(
        actor_id="UADMIN", actor_role=Role.OWNER, user_id="U0LEAVER")))
    assert any(r["api_key"] == NEW_SECRET for r in h.anthropic.message_requests())  # the secret was really used
    assert h.slack.bot_messages("CALERT") and h.slack.bot_messages("CREMIND")
    slack = json.dumps([params for _method, params in h.slack.calls], default=str) + json.dumps(answers)
    database = json.dumps(await h.table_snapshot(), default=str)
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert h.anthropic.org_keys["apikey_new"]["partial_key_hint"] in database  # the hint is there, the secret not
    for secret in (NEW_SECRET, API_KEY, DEFAULT_ADMIN_KEY):
        assert secret not in slack, "a secret reached Slack"
        assert secret not in logs, "a secret reached the logs"
        assert secret not in database, "a secret reached the database"
    assert len(caplog.records) > 50  # the libraries really logged at DEBUG


async def test_audit_trail_names_who_did_what(harness: Harness, monkeypatch) -> None:
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)
    await add(harness, "new", "NEW_KEY")
    await revoke(harness, "new")
    async with harness.sessions() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.target == "new")))
    assert [(e.actor, e.action) for e in entries] == [("UADMIN", "keys.add"), ("UADMIN", "keys.revoke")]
    assert all(e.at == harness.clock() for e in entries)


# -- the command line ----------------------------------------------------------------------------------------


def test_cli_keys_add_list_revoke_and_remind(tmp_path, database_url: str, fake_slack) -> None:
    from tests.app.test_cli import run_cli

    env = {"DATABASE_URL": database_url, "CI_KEY": NEW_SECRET}
    added = run_cli("keys", "add", "ci", "env:CI_KEY", "--workspace", "ci", "rotate_days=7", env=env, cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("✓ Key ci registered for workspace ci\nHint sk-ant-api03-…Zq9X · secret in CI_KEY")
    listing = run_cli("keys", env=env, cwd=tmp_path)
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith("ci ")]
    assert row.split(" · ")[:3] == ["ci", "workspace ci", "sk-ant-api03-…Zq9X"] and "due in 7 d" in row
    for args, phrase in [(("keys", "add", "x", "env:NOT_SET_ANYWHERE"), plain(NOT_AN_API_KEY)),
                         (("keys", "add", "x", NEW_SECRET), "must be env:<VARIABLE>"),
                         (("keys", "add", "x", "env:CI_KEY", "colour=blue"), "Unknown option colour="),
                         (("keys", "revoke", "nope"), "There is no key nope")]:
        refused = run_cli(*args, env=env, cwd=tmp_path)
        lines = refused.stderr.splitlines()  # the refusal, then the usage as typed here
        assert refused.returncode == 2 and len(lines) == 2 and phrase in lines[0], args
        assert lines[1].startswith(f"Usage: claude-gate {args[0]} {args[1]}"), lines
        assert NEW_SECRET not in refused.stderr + refused.stdout
    schedule = run_cli("remind", env=env | {"REMINDER_CHANNEL": "CREMIND"}, cwd=tmp_path)
    assert "Schedule: 0 9 * * 1-5 in UTC → CREMIND" in schedule.stdout and "ci" in schedule.stdout
    slack = {"SLACK_BOT_TOKEN": "xoxb-cli", "SLACK_API_URL": fake_slack.api_url, "REMINDER_CHANNEL": "CREMIND"}
    reminded = run_cli("remind", "--now", env=env | slack, cwd=tmp_path)
    assert reminded.returncode == 0, reminded.stderr
    assert "ci" in reminded.stdout and len(fake_slack.bot_messages("CREMIND")) == 1
    again = run_cli("reminders", "run", env=env | slack, cwd=tmp_path)  # `remind --now` is this one
    assert again.returncode == 0 and len(fake_slack.bot_messages("CREMIND")) == 1, again.stdout
    revoked = run_cli("keys", "revoke", "ci", env=env, cwd=tmp_path)
    assert revoked.returncode == 0 and "Key ci revoked" in revoked.stdout and "Claude Gate:" in revoked.stdout
    assert "Workspace ci has no usable key" in revoked.stdout
    for result in (added, listing, schedule, reminded, revoked):
        assert NEW_SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("alerts", ["no channel", "channel", "channel, post refused"])
async def test_no_key_says_an_admin_was_told_only_when_one_was(harness_factory, alerts: str) -> None:
    h = await harness_factory(admin_alert_channel=None if alerts == "no channel" else "CALERT")
    await chatting_user(h)
    await revoke(h, "default")
    if alerts == "channel, post refused":
        h.slack.fail_next("chat.postMessage", "channel_not_found")
    told = alerts == "channel"
    for asked in (1, 2):  # the second within the hour: no new alert, and the first one's delivery decides
        await h.mention("U1", "hello")
        await eventually(lambda asked=asked: len(h.ephemerals_for("U1")) == asked)
        text = h.ephemerals_for("U1")[-1]["text"]
        assert ("An admin has been told" in text) is told, text
        if not told:
            assert "Ask an admin to register one (`/claude-admin keys add`)" in text
    assert len(h.slack.bot_messages("CALERT")) == (1 if told else 0)
