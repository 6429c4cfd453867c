"""Time-bound grants (`grant <user> <role> for=<n>d|<n>h`) through the real app: they sit above the permanent grant,
are never honoured once expired (compared at admission, before any job ran), and the scheduler leader ends them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from bot.domain.roles import Role
from bot.scheduler import JobScheduler
from bot.store.models import RoleGrant, TimedGrant
from tests.app.test_cli import ROOT
from tests.support.harness import Harness, eventually, text_of

ADMIN = "/claude-admin"


def dms_to(harness: Harness, user: str) -> list[str]:
    return [c["text"] for c in harness.slack.calls_to("chat.postMessage") if c.get("channel") == user]


@pytest.fixture
async def org(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("U1", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    harness.slack.add_user("UVIEW", name="uview")
    return harness


async def timed(harness: Harness, user: str) -> TimedGrant | None:
    async with harness.sessions() as session:
        return await session.get(TimedGrant, user)


async def test_time_bound_grant_sits_above_the_permanent_one(org: Harness) -> None:
    answer = text_of(await org.command("UADMIN", ADMIN, "grant <@U1|u1> power for=7d"))
    until = org.clock() + timedelta(days=7)
    assert f"has the role *power* for 7 days, until {until:%Y-%m-%d %H:%M} UTC" in answer
    assert "Then they return to *user*" in answer
    (dm,) = await eventually(lambda: dms_to(org, "U1"))
    assert "*power* for 7 days" in dm and "Then your role is *user* again" in dm
    whois = text_of(await org.command("UADMIN", ADMIN, "whois U1"))
    assert f"time-bound grant until {until:%Y-%m-%d %H:%M} UTC, then *user* from an explicit grant" in whois
    users = text_of(await org.command("UADMIN", ADMIN, "users"))
    assert f"*power* until {until:%Y-%m-%d %H:%M} UTC" in users and "<@U1> · *user*" in users
    async with org.sessions() as session:
        assert (await session.get(RoleGrant, "U1")).role == "user"  # the permanent grant stays underneath
    grant_audit = [a for a in await org.audit() if a.action == "grant" and a.actor == "UADMIN"]
    assert grant_audit[-1].detail["role"] == "power" and grant_audit[-1].detail["until"] == until.isoformat()


@pytest.mark.parametrize("duration", ["0d", "-1d", "99999d", "1w", "0h", "366d", "", "7"])
async def test_bad_durations_are_one_line_and_change_nothing(org: Harness, duration: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UADMIN", ADMIN, f"grant U1 power for={duration}")
    assert answer["text"].startswith(":warning:") and len(answer["text"].splitlines()) == 2  # the line + usage
    assert "for=<n>d|<n>h" in answer["text"]
    assert await org.table_snapshot() == before


async def test_owner_is_never_time_bound(org: Harness) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UOWNER", ADMIN, "grant U1 owner for=1d")
    assert "cannot be time-bound" in answer["text"] and len(answer["text"].splitlines()) == 2
    assert await org.table_snapshot() == before


async def test_time_bound_grant_must_be_above_the_permanent_one_and_respects_rights(org: Harness) -> None:
    before = await org.table_snapshot()
    assert "must be above it" in (await org.command("UADMIN", ADMIN, "grant U1 user for=1d"))["text"]
    assert "Only an owner" in (await org.command("UADMIN", ADMIN, "grant U1 admin for=1d"))["text"]
    refused = await org.command("U1", ADMIN, "grant UVIEW user for=1d")
    assert "needs a role with manage roles rights" in refused["text"]
    after = await org.table_snapshot()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"}
    # an owner may give admin for a while
    assert "has the role *admin* for 12 hours" in (await org.command("UOWNER", ADMIN, "grant U1 admin for=12h"))["text"]


async def test_permanent_grant_replaces_and_revoke_removes_both(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "grant U1 power for=1d")
    assert (await timed(org, "U1")) is not None
    await org.command("UADMIN", ADMIN, "grant U1 power")
    assert (await timed(org, "U1")) is None
    await org.command("UADMIN", ADMIN, "grant UVIEW power for=1d")
    answer = text_of(await org.command("UADMIN", ADMIN, "revoke UVIEW"))
    assert "no longer has the role *power*" in answer and "*viewer*" in answer
    assert (await timed(org, "UVIEW")) is None


async def test_an_expired_grant_is_refused_at_admission_then_ended_by_the_leader(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "grant U1 power for=1h")
    await org.mention("U1", "--model opus are you there?")
    (record,) = await org.settled_records(1)
    assert record.admitted and record.role == "power"
    org.clock.advance(3600)  # the grant ends now; no job has run
    assert (await timed(org, "U1")) is not None
    await org.mention("U1", "--model opus and now?")
    records = await org.settled_records(2)
    assert not records[1].admitted and records[1].role == "user" and records[1].refusal_reason == "model_not_allowed"
    assert len(org.anthropic.message_requests()) == 1
    assert "(from an explicit grant)" in text_of(await org.command("U1", "/claude", "status"))

    jobs = JobScheduler(db=org.runtime.db, clock=org.clock, settings=org.runtime.settings,
                        client=org.runtime.client, slack=org.runtime.slack, holder="leader")
    assert await jobs.keep_leadership()
    try:
        (ended,) = await jobs.end_expired_access()
        assert (ended.user_id, ended.role) == ("U1", Role.POWER)
        assert await jobs.end_expired_access() == []  # ended once
    finally:
        await jobs.shutdown()
    assert (await timed(org, "U1")) is None
    dm = (await eventually(lambda: [t for t in dms_to(org, "U1") if "ended" in t]))[0]
    assert "time-bound Claude Gate role *power* ended" in dm and "Your role is now *user*" in dm
    expired = [a for a in await org.audit() if a.action == "grant.expired"]
    assert [(a.actor, a.target, a.detail["role"]) for a in expired] == [("scheduler", "U1", "power")]


async def test_a_follower_does_not_end_grants(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, "grant U1 power for=1h")
    org.clock.advance(7200)
    leader = JobScheduler(db=org.runtime.db, clock=org.clock, settings=org.runtime.settings,
                          client=org.runtime.client, holder="a")
    follower = JobScheduler(db=org.runtime.db, clock=org.clock, settings=org.runtime.settings,
                            client=org.runtime.client, holder="b")
    try:
        assert await leader.keep_leadership() and not await follower.keep_leadership()
        assert await follower.end_expired_access() == []
        assert (await timed(org, "U1")) is not None
        assert len(await leader.end_expired_access()) == 1
    finally:
        await leader.shutdown()
        await follower.shutdown()


def test_cli_takes_the_same_words(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    assert cli("grant", "U1", "user").returncode == 0
    result = cli("grant", "U1", "power", "for=2d")
    assert result.returncode == 0, result.stderr
    assert "U1 has the role power for 2 days, until" in result.stdout and "return to user" in result.stdout
    for bad in ("for=0d", "for=-1d", "for=99999d", "for=1w", "--for=1w"):
        result = cli("grant", "U1", "power", bad)
        lines = result.stderr.strip().splitlines()  # the refusal, then the usage as typed here
        assert result.returncode == 2 and len(lines) == 2 and lines[1].startswith("Usage: claude-gate grant"), lines
    result = cli("grant", "U2", "owner", "for=1d")
    assert result.returncode == 2 and "cannot be time-bound" in result.stderr
    listing = cli("users").stdout
    assert "U1 · power until " in listing and "U1 · user · by cli on " in listing
