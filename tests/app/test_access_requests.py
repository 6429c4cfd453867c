"""Access requests through the real app: refusal → "Request access" → form → approvers' message → decision → answer.

Every click and form is a signed block_actions / view_submission, every modal a views.open on the fake Slack."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from bot.scheduler import JobScheduler
from bot.store.models import AccessRequest, AccessRequestMessage, RoleGrant, TimedGrant
from tests.support.access_flow import (
    click_decision,
    click_request_access,
    decision_buttons,
    dms_to,
    ephemeral_texts,
    refusal_of,
    request_button_of,
    request_messages,
    submit_form,
)
from tests.support.harness import Harness, eventually

ADMIN = "/claude-admin"


@pytest.fixture
async def org(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("U1", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    for user in ("UVIEW", "UVIEW2"):
        harness.slack.add_user(user, name=user.lower())
    return harness


async def requests_in_db(h: Harness) -> list[AccessRequest]:
    async with h.sessions() as session:
        return list(await session.scalars(select(AccessRequest).order_by(AccessRequest.id)))


async def ask_for_access(h: Harness, user: str = "UVIEW", reason: str = "Summarise our support tickets",
                         role: str | None = None, *, copies: int = 2) -> dict:
    refusal = await refusal_of(h, user)
    view = await click_request_access(h, user, refusal)
    preset = next(b for b in view["blocks"] if b.get("block_id") == "role")["element"]["initial_option"]["value"]
    answer = await submit_form(h, user, view, role or preset, reason)
    assert answer["response_action"] == "update", answer
    await eventually(lambda: len(request_messages(h)) >= copies)

    async def copies_stored() -> bool:  # each copy is stored after Slack answered its post
        async with h.sessions() as session:
            return len(list(await session.scalars(select(AccessRequestMessage)))) >= copies

    await eventually(copies_stored)
    return answer


async def test_refusal_to_answer(org: Harness) -> None:
    refusal = await refusal_of(org, "UVIEW", "what is our refund policy?")
    assert "Your role *viewer* cannot ask Claude." in refusal["text"] and "Request access" in refusal["text"]
    assert request_button_of(refusal["blocks"])["value"] == "user"
    view = await click_request_access(org, "UVIEW", refusal)
    role_block = next(b for b in view["blocks"] if b.get("block_id") == "role")
    assert [o["value"] for o in role_block["element"]["options"]] == ["user", "power"]
    assert role_block["element"]["initial_option"]["value"] == "user"
    reason_input = next(b for b in view["blocks"] if b.get("block_id") == "reason")["element"]
    assert reason_input["max_length"] == 500
    answer = await submit_form(org, "UVIEW", view, "user", "Answer <!channel> customers' refund questions")
    assert answer["response_action"] == "update" and "was sent" in json.dumps(answer["view"])

    copies = await eventually(lambda: len(found := request_messages(org)) == 2 and found)
    assert {m["channel"] for m in copies} == {"DUOWNER", "DUADMIN"}  # each admin and owner, never the asker
    shown = json.dumps(copies[0]["blocks"])
    assert "<@UVIEW> asks for the Claude Gate role *user*" in shown
    assert "<!channel>" not in shown + copies[0]["text"] and "&lt;!channel&gt;" not in shown  # pings nobody
    assert set(decision_buttons(copies[0])) == {"access_request_approve_1d", "access_request_approve_7d",
                                                "access_request_approve_30d", "access_request_approve_permanent",
                                                "access_request_deny"}

    admin_copy = next(m for m in copies if m["channel"] == "DUADMIN")
    await click_decision(org, "UADMIN", admin_copy, "access_request_approve_7d")
    told = await eventually(lambda: ephemeral_texts(org, "UADMIN"))
    assert "Approved by <@UADMIN>: *user* for 7 days" in told[0]
    async with org.sessions() as session:
        timed = await session.get(TimedGrant, "UVIEW")
    assert timed.role == "user" and timed.expires_at == org.clock() + timedelta(days=7)
    for message in request_messages(org):  # every copy says who decided what, without buttons
        assert "Approved by <@UADMIN>: *user* for 7 days" in json.dumps(message["blocks"])
        assert not decision_buttons(message)
    dm = (await eventually(lambda: [t for t in dms_to(org, "UVIEW") if "approved" in t]))[0]
    assert "Your access request was approved by <@UADMIN>" in dm and "Ask your question again" in dm
    actions = [(a.actor, a.action) for a in await org.audit() if a.actor != "test"]
    assert ("UVIEW", "access.request") in actions and ("UADMIN", "access.approve") in actions
    assert ("UADMIN", "grant") in actions

    # asked again, answered
    await org.mention("UVIEW", "what is our refund policy?")
    records = await org.settled_records(2)
    assert records[-1].admitted and records[-1].role == "user"

    # the owner's stale copy: told who decided, nothing changes
    owner_copy = next(m for m in copies if m["channel"] == "DUOWNER")
    before = await org.table_snapshot()
    await click_decision(org, "UOWNER", owner_copy, "access_request_approve_permanent")
    told = await eventually(lambda: ephemeral_texts(org, "UOWNER"))
    assert "already decided" in told[0] and "Approved by <@UADMIN>" in told[0]
    assert await org.table_snapshot() == before


async def test_a_model_refusal_presets_power_and_a_second_click_says_pending(org: Harness) -> None:
    refusal = await refusal_of(org, "U1", "--model opus write a haiku")
    assert request_button_of(refusal["blocks"])["value"] == "power"
    view = await click_request_access(org, "U1", refusal)
    role_block = next(b for b in view["blocks"] if b.get("block_id") == "role")
    assert [o["value"] for o in role_block["element"]["options"]] == ["power"]
    assert (await submit_form(org, "U1", view, "power", "Long design reviews"))["response_action"] == "update"
    again = await click_request_access(org, "U1", refusal)
    assert "already pending" in json.dumps(again) and again.get("submit") is None
    # a form submitted twice (an old modal) is refused on its field, nothing stored
    second = await submit_form(org, "U1", view, "power", "Again")
    assert second["response_action"] == "errors" and "already pending" in second["errors"]["role"]
    assert len(await requests_in_db(org)) == 1


async def test_the_form_checks_its_input(org: Harness) -> None:
    refusal = await refusal_of(org, "UVIEW")
    view = await click_request_access(org, "UVIEW", refusal)
    before = await org.table_snapshot()
    for role, reason, block in (("admin", "please", "role"), ("owner", "please", "role"), ("user", "   ", "reason"),
                                ("user", "x" * 501, "reason"), ("emperor", "please", "role"), (None, "please", "role")):
        answer = await submit_form(org, "UVIEW", view, role, reason)
        assert answer["response_action"] == "errors" and set(answer["errors"]) == {block}, (role, answer)
    assert await org.table_snapshot() == before


async def test_deny(org: Harness) -> None:
    await ask_for_access(org)
    admin_copy = next(m for m in request_messages(org) if m["channel"] == "DUADMIN")
    await click_decision(org, "UADMIN", admin_copy, "access_request_deny")
    await eventually(lambda: ephemeral_texts(org, "UADMIN"))
    assert all("Denied by <@UADMIN>" in json.dumps(m["blocks"]) for m in request_messages(org))
    dm = (await eventually(lambda: [t for t in dms_to(org, "UVIEW") if "denied" in t]))[0]
    assert "was denied by <@UADMIN>" in dm
    async with org.sessions() as session:
        assert await session.get(TimedGrant, "UVIEW") is None and await session.get(RoleGrant, "UVIEW") is None
    (request,) = await requests_in_db(org)
    assert (request.status, request.decided_by, request.open_key) == ("denied", "UADMIN", None)
    # denied: asking again is possible
    await ask_for_access(org, copies=4)


async def test_forged_and_replayed_actions_change_nothing(org: Harness) -> None:
    await ask_for_access(org)
    copy = next(m for m in request_messages(org) if m["channel"] == "DUADMIN")
    before = await org.table_snapshot()
    # a viewer and a plain user press Approve on a copy they were never sent, a bad value, an unknown request
    await click_decision(org, "UVIEW2", copy, "access_request_approve_permanent")
    await click_decision(org, "U1", copy, "access_request_approve_30d")
    await click_decision(org, "UADMIN", copy, "access_request_approve_7d", value="1 OR 1=1")
    await click_decision(org, "UADMIN", copy, "access_request_approve_7d", value="999")
    await eventually(lambda: len(ephemeral_texts(org, "UADMIN")) == 2)
    assert "Only people who may grant *user*" in (await eventually(lambda: ephemeral_texts(org, "UVIEW2")))[0]
    assert "Only people who may grant" in (await eventually(lambda: ephemeral_texts(org, "U1")))[0]
    assert all("cannot find" in t or "no access request #999" in t for t in ephemeral_texts(org, "UADMIN"))
    after = await org.table_snapshot()
    denied = [a for a in await org.audit() if a.action == "denied"]
    assert {a.actor for a in denied} == {"UVIEW2", "U1"}
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"}
    # the requester cannot approve their own request either
    await click_decision(org, "UVIEW", copy, "access_request_approve_permanent")
    assert "Nobody decides their own" in (await eventually(lambda: [
        t for t in ephemeral_texts(org, "UVIEW") if "decides" in t]))[0]
    # replay: the same approval twice grants once
    await click_decision(org, "UADMIN", copy, "access_request_approve_1d")
    await click_decision(org, "UADMIN", copy, "access_request_approve_1d")
    await eventually(lambda: len(ephemeral_texts(org, "UADMIN")) == 4)
    last_two = ephemeral_texts(org, "UADMIN")[-2:]
    assert sum("already decided" in t for t in last_two) == 1 and sum("Approved by" in t for t in last_two) == 2
    assert len([a for a in await org.audit() if a.action == "access.approve"]) == 1


async def test_alert_channel_gets_the_one_copy(harness_factory) -> None:
    h = await harness_factory(admin_alert_channel="CALERTS")
    h.slack.add_user("UADMIN")
    h.slack.add_user("UVIEW")
    await h.grant("UADMIN", Role.ADMIN)
    await ask_for_access(h, copies=1)
    (copy,) = request_messages(h)
    assert copy["channel"] == "CALERTS"


async def test_requests_command_lists_approves_and_denies(org: Harness) -> None:
    await ask_for_access(org, "UVIEW")
    await ask_for_access(org, "UVIEW2", role="power", copies=4)
    listing = await org.command("UADMIN", ADMIN, "requests")
    shown = listing["text"] + json.dumps(listing["blocks"])
    first, second = await requests_in_db(org)
    assert "2 pending access requests" in shown and f"#{first.id}* <@UVIEW> asks for *user*" in shown
    approved = await org.command("UADMIN", ADMIN, f"requests approve {first.id} for=30d")
    assert "Approved by <@UADMIN>: *user* for 30 days" in approved["text"]
    denied = await org.command("UOWNER", ADMIN, f"requests deny {second.id}")
    assert "Denied by <@UOWNER>" in denied["text"]
    assert "already decided" in (await org.command("UOWNER", ADMIN, f"requests deny {first.id}"))["text"]
    assert all(not decision_buttons(m) for m in request_messages(org))
    assert "0 pending" in (await org.command("UADMIN", ADMIN, "requests"))["text"]
    before = await org.table_snapshot()
    for text in ("requests approve abc", "requests approve 1 for=1w", "requests deny", "requests approve 0"):
        answer = await org.command("UADMIN", ADMIN, text)
        assert answer["text"].startswith(":warning:") and "Usage" in answer["text"], text
    assert "needs a role with manage roles" in (await org.command("U1", ADMIN, "requests"))["text"]
    after = await org.table_snapshot()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"}


async def test_requests_expire_after_seven_days(org: Harness) -> None:
    await ask_for_access(org)
    org.clock.advance(7 * 24 * 3600 + 1)
    jobs = JobScheduler(db=org.runtime.db, clock=org.clock, settings=org.runtime.settings,
                        client=org.runtime.client, slack=org.runtime.slack,
                        access_requests=org.runtime.access_requests, holder="a")
    try:
        assert await jobs.keep_leadership()
        await jobs.end_expired_access()
    finally:
        await jobs.shutdown()
    (request,) = await requests_in_db(org)
    assert request.status == "expired"
    assert all("Expired: nobody decided within 7 days" in json.dumps(m["blocks"]) for m in request_messages(org))
    assert any("expired" in t for t in dms_to(org, "UVIEW"))
    copy = request_messages(org)[0]  # an old click on the expired request (its buttons are gone)
    await click_decision(org, "UADMIN", copy, "access_request_approve_7d", value=str(request.id))
    assert "Expired" in (await eventually(lambda: ephemeral_texts(org, "UADMIN")))[0]
    async with org.sessions() as session:
        assert await session.get(TimedGrant, "UVIEW") is None


async def test_cli_lists_and_decides_with_the_same_words(org: Harness, database_url: str) -> None:
    import asyncio

    from tests.app.test_cli import run_cli
    from tests.support.harness import BOT_TOKEN

    await ask_for_access(org)
    (request,) = await requests_in_db(org)
    env = {"DATABASE_URL": database_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": org.slack.api_url}
    listing = await asyncio.to_thread(run_cli, "requests", env=env)
    assert listing.returncode == 0 and f"#{request.id} UVIEW asks for user" in listing.stdout, listing.stderr
    bad = await asyncio.to_thread(run_cli, "requests", "approve", str(request.id), "for=1w", env=env)
    assert bad.returncode == 2 and "is not a duration" in bad.stderr
    done = await asyncio.to_thread(run_cli, "requests", "approve", str(request.id), "for=2d", env=env)
    assert done.returncode == 0 and "Approved by an admin (from the command line): user for 2 days" in done.stdout, (
        done.stdout + done.stderr)
    assert all("Approved by an admin (from the command line)" in json.dumps(m["blocks"])
               for m in request_messages(org))
    assert any("approved" in t for t in dms_to(org, "UVIEW"))
    async with org.sessions() as session:
        assert (await session.get(TimedGrant, "UVIEW")).role == "user"


async def test_a_request_nobody_could_be_shown_is_kept_and_the_asker_told(harness_factory) -> None:
    h = await harness_factory(admin_alert_channel="CGONE")
    h.slack.add_user("UADMIN")
    h.slack.add_user("UVIEW")
    await h.grant("UADMIN", Role.ADMIN)
    refusal = await refusal_of(h, "UVIEW")
    view = await click_request_access(h, "UVIEW", refusal)
    h.slack.fail_next("chat.postMessage", "channel_not_found")  # the alert channel is gone
    assert (await submit_form(h, "UVIEW", view, "user", "Drafting release notes"))["response_action"] == "update"
    dm = (await eventually(lambda: [t for t in dms_to(h, "UVIEW") if "could not post" in t]))[0]
    assert "/claude-admin requests" in dm
    listing = await h.command("UADMIN", ADMIN, "requests")
    assert "1 pending access request" in listing["text"]


async def test_app_home_tells_admins_what_waits(org: Harness) -> None:
    await ask_for_access(org)
    await org.command("UADMIN", ADMIN, "grant UVIEW2 power for=2d")
    await org.send_event({"type": "app_home_opened", "user": "UADMIN", "channel": "DUADMIN", "tab": "home"})
    view = json.dumps(await eventually(lambda: org.slack.home_views.get("UADMIN")))
    assert "Access requests waiting" in view and "Time-bound roles" in view


async def test_a_channels_roles_refusal_offers_the_lowest_role_it_admits(org: Harness) -> None:
    assert "power" in (await org.command("UADMIN", ADMIN, "channel <#C0001> roles power,admin"))["text"]
    refusal = await refusal_of(org, "U1", "hello")  # a user, in a channel for power and admin
    assert "may not ask Claude in" in refusal["text"] and "Request access" in refusal["text"]
    assert request_button_of(refusal["blocks"])["value"] == "power"
    view = await click_request_access(org, "U1", refusal)
    assert next(b for b in view["blocks"] if b.get("block_id") == "role")["element"]["initial_option"]["value"] \
        == "power"
    viewer = await refusal_of(org, "UVIEW", "hello")  # a viewer there: power too, not user
    assert request_button_of(viewer["blocks"])["value"] == "power"


async def test_no_request_button_in_a_channel_switched_off(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "channel <#C0001> off")
    refusal = await refusal_of(org, "U1", "hello")
    assert "switched off" in refusal["text"] and request_button_of(refusal["blocks"]) is None
    viewer = await refusal_of(org, "UVIEW", "hello")
    assert request_button_of(viewer["blocks"]) is None


AWS_KEY = "AK" + "IA" + "Q3EGUFZK7XMPL4RT"  # assembled: no whole key in the source


async def test_a_secret_in_what_for_is_refused_on_its_field_under_block(org: Harness) -> None:
    refusal = await refusal_of(org, "UVIEW")
    view = await click_request_access(org, "UVIEW", refusal)
    before = await org.table_snapshot()
    posted = len(org.slack.calls_to("chat.postMessage"))
    answer = await submit_form(org, "UVIEW", view, "user", f"Debugging S3 with _{AWS_KEY}_ for the data team")
    assert answer["response_action"] == "errors" and set(answer["errors"]) == {"reason"}
    line = answer["errors"]["reason"]
    assert "contains an AWS access key" in line and "Rotate it now" in line and AWS_KEY not in line
    assert "\n" not in line
    assert await org.table_snapshot() == before  # nothing stored
    assert len(org.slack.calls_to("chat.postMessage")) == posted and request_messages(org) == []  # nothing posted
    assert AWS_KEY not in json.dumps(org.slack.calls, default=str)


async def test_a_secret_in_what_for_is_stored_and_shown_redacted_under_redact(harness_factory) -> None:
    h = await harness_factory(secret_policy="redact")
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN)):
        h.slack.add_user(user, name=user.lower())
        await h.grant(user, role)
    h.slack.add_user("UVIEW", name="uview")
    await ask_for_access(h, reason=f"Debugging S3 with {AWS_KEY} for the data team")
    (row,) = await requests_in_db(h)
    assert row.reason == "Debugging S3 with [redacted: AWS access key] for the data team"
    copies = request_messages(h)
    assert len(copies) == 2 and all("[redacted: AWS access key]" in json.dumps(m["blocks"]) for m in copies)
    assert AWS_KEY not in json.dumps(h.slack.calls, default=str)
    assert AWS_KEY not in json.dumps(await h.table_snapshot(), default=str)
