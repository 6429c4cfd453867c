"""Scheduled prompts end to end: `/claude schedule`, `schedules` and `unschedule` through the Bolt app, and the
leader's runs through the whole gate as the creator, against the fake Slack and Anthropic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from bot.scheduler import JobScheduler
from bot.services.data.retention import purge_expired
from bot.services.keys.offboarding import Offboarding
from bot.store.models import ScheduledPrompt
from tests.support.harness import Harness, text_of

SELF, ADMIN = "/claude", "/claude-admin"
CHANNEL = "C0SCHED"
WINTER_MONDAY = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # New York is UTC-5 in January
GITHUB = "gh" + "p_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98"  # assembled: no whole token in the source


async def people(h: Harness) -> Harness:
    h.clock.now = WINTER_MONDAY
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("UPOWER", Role.POWER),
                       ("UUSER", Role.USER), ("UOTHER", Role.USER)):
        h.slack.add_user(user, name=user.lower(), tz="America/New_York")
        await h.grant(user, role)
    h.slack.add_user("UVIEW", name="uview")
    return h


@pytest.fixture
async def org(harness: Harness) -> Harness:
    return await people(harness)


async def schedule(h: Harness, user: str, text: str, *, channel: str = CHANNEL) -> str:
    return text_of(await h.command(user, SELF, f"schedule {text}", channel=channel))


async def rows(h: Harness) -> list[ScheduledPrompt]:
    async with h.sessions() as session:
        return list(await session.scalars(select(ScheduledPrompt).order_by(ScheduledPrompt.id)))


def dms_to(h: Harness, user: str) -> list[str]:
    return [call.get("text") or "" for call in h.slack.calls_to("chat.postMessage")
            if call.get("channel") in (user, "D" + user)]


async def run_at(h: Harness, moment: datetime) -> list[Any]:
    h.clock.now = moment
    return await h.runtime.schedules.run_due()


# -- making, listing and removing ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "says"), [
    ("every day 09:00 standup notes", "Put when in quotes"),
    ('"every day 25:00" standup notes', "not a time of day"),
    ('"*/5 9 * * *" standup notes', "at most once an hour"),
    ('"0 9 * *" standup notes', "five crontab fields"),
    ('"every weekday 09:00"', "Add the prompt"),
])
async def test_bad_input_is_one_line_and_changes_nothing(org: Harness, text: str, says: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UUSER", SELF, f"schedule {text}", channel=CHANNEL)
    error, usage = answer["text"].strip().split("\n")  # one line, then the subcommand's usage
    assert says in error and usage.startswith("Usage:") and "/claude schedule" in usage
    assert await org.table_snapshot() == before


async def test_a_schedule_is_made_in_a_channel_only_and_audited(org: Harness) -> None:
    before = await org.table_snapshot()
    refused = await schedule(org, "UUSER", '"every day 09:00" hello', channel="DUUSER")
    assert "post in a channel" in refused and await org.table_snapshot() == before
    made = await schedule(org, "UUSER", '"every weekday 09:00" Summarise #general')
    assert "Scheduled #1" in made and "America/New_York" in made and "14:00 UTC" in made
    (row,) = await rows(org)
    assert (row.slack_user_id, row.channel_id, row.cron, row.timezone, row.state, row.prompt) == (
        "UUSER", CHANNEL, "0 9 * * 1-5", "America/New_York", "active", "Summarise #general")
    assert row.next_run_at == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 09:00 in New York in winter
    (entry,) = [e for e in await org.audit() if e.action == "schedule.add"]
    assert entry.actor == "UUSER" and entry.detail["schedule"] == 1 and "prompt" not in entry.detail


async def test_a_schedule_the_gate_would_refuse_there_is_not_made(org: Harness) -> None:
    await org.command("UADMIN", ADMIN, f"channel <#{CHANNEL}> off")
    before = await org.table_snapshot()
    refused = await schedule(org, "UUSER", '"every day 09:00" hello')
    assert "Nothing was scheduled" in refused and await org.table_snapshot() == before


async def test_the_role_bounds_how_many_a_person_keeps(org: Harness) -> None:
    for n in (1, 2):
        assert f"Scheduled #{n}" in await schedule(org, "UUSER", f'"every day 0{n}:00" prompt {n}')
    before = await org.table_snapshot()
    third = await schedule(org, "UUSER", '"every day 03:00" prompt 3')
    assert "keeps at most 2 schedules" in third and await org.table_snapshot() == before
    viewer = await schedule(org, "UVIEW", '"every day 03:00" prompt')
    assert "cannot ask Claude" in viewer and "Nothing was scheduled" in viewer
    await org.command("UADMIN", ADMIN, "policy set power schedules 0")
    assert "cannot schedule prompts" in await schedule(org, "UPOWER", '"every day 03:00" prompt')
    changed = text_of(await org.command("UADMIN", ADMIN, "policy set user schedules 3"))
    assert "schedules" in changed
    assert "3 schedules" in text_of(await org.command("UADMIN", ADMIN, "policy user"))
    assert "Scheduled #3" in await schedule(org, "UUSER", '"every day 03:00" prompt 3')
    bad = text_of(await org.command("UADMIN", ADMIN, "policy set user schedules many"))
    assert "whole number" in bad


async def test_each_person_lists_their_own_and_admins_everyones(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" mine')
    await schedule(org, "UOTHER", '"0 10 * * 1" theirs')
    own = await schedule_list(org, "UUSER")
    assert "#1" in own and "mine" in own and "theirs" not in own and "1 of 2 schedules" in own
    everyone = await schedule_list(org, "UADMIN")
    assert "mine" in everyone and "theirs" in everyone and "UOTHER" in everyone and "active" in everyone
    assert "1 of 2" in text_of(await h_status(org, "UUSER"))


async def h_status(h: Harness, user: str) -> dict[str, Any]:
    return await h.command(user, SELF, "status", channel=CHANNEL)


async def schedule_list(h: Harness, user: str) -> str:
    return text_of(await h.command(user, SELF, "schedules", channel=CHANNEL))


async def test_unschedule_own_or_as_admin_never_someone_elses(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" first')
    await schedule(org, "UUSER", '"every day 10:00" second')
    before = await org.table_snapshot()
    refused = text_of(await org.command("UOTHER", SELF, "unschedule 1"))
    assert "someone else's" in refused and await org.table_snapshot() == before
    missing = text_of(await org.command("UUSER", SELF, "unschedule 99"))
    assert "no schedule #99" in missing and await org.table_snapshot() == before
    assert "Removed schedule #1" in text_of(await org.command("UUSER", SELF, "unschedule 1"))
    assert "Removed schedule #2" in text_of(await org.command("UADMIN", SELF, "unschedule 2"))
    assert await rows(org) == []
    assert any("removed your scheduled prompt #2" in dm for dm in dms_to(org, "UUSER"))
    removals = [(e.actor, e.target) for e in await org.audit() if e.action == "schedule.remove"]
    assert removals == [("UUSER", "UUSER"), ("UADMIN", "UUSER")]


async def test_a_credential_in_the_prompt_follows_secret_policy(harness_factory) -> None:
    blocking = await people(await harness_factory())
    before = await blocking.table_snapshot()
    refused = await schedule(blocking, "UUSER", f'"every day 09:00" deploy with {GITHUB}')
    assert "a GitHub token" in refused and "Nothing was scheduled" in refused and GITHUB not in refused
    assert await blocking.table_snapshot() == before
    redacting = await people(await harness_factory(secret_policy="redact"))
    made = await schedule(redacting, "UUSER", f'"every day 09:00" deploy with {GITHUB}')
    assert "redacted" in made
    (row,) = await rows(redacting)
    assert GITHUB not in row.prompt and "[redacted: GitHub token]" in row.prompt


# -- runs ------------------------------------------------------------------------------------------------------


async def test_a_run_posts_in_the_channel_charged_to_its_creator_once(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" What is on today?')
    assert await run_at(org, datetime(2026, 1, 5, 13, 59, tzinfo=UTC)) == []  # 08:59 in New York
    (ran,) = await run_at(org, datetime(2026, 1, 5, 14, 0, 30, tzinfo=UTC))
    assert ran.outcome == "ok"
    (record,) = await org.settled_records(1)
    assert (record.slack_user_id, record.surface, record.channel_id, record.role, record.outcome) == (
        "UUSER", "schedule", CHANNEL, "user", "ok")
    root, answer = org.slack.bot_messages(CHANNEL)[:2]
    assert "#1" in org.slack._visible_text(root) and "every day 09:00" in org.slack._visible_text(root)
    assert answer.get("thread_ts") == root["ts"]
    assert "What is on today?" in str(org.anthropic.message_requests()[-1])
    assert await run_at(org, datetime(2026, 1, 5, 14, 1, tzinfo=UTC)) == []  # the occurrence is spent
    (row,) = await rows(org)
    assert row.next_run_at == datetime(2026, 1, 6, 14, 0, tzinfo=UTC) and row.last_outcome == "ok"


async def test_the_creator_time_zone_holds_across_daylight_saving(org: Harness) -> None:
    org.clock.now = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # New York moves to summer time on Sunday 8 March
    await schedule(org, "UUSER", '"every day 09:00" morning')
    fired = []
    for moment in (datetime(2026, 3, 7, 14, 0, tzinfo=UTC), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)):
        assert [r.outcome for r in await run_at(org, moment - timedelta(minutes=1))] == []
        fired += [r.outcome for r in await run_at(org, moment)]
    assert fired == ["ok", "ok"]  # 09:00 in New York: 14:00 UTC in winter, 13:00 UTC in summer
    (row,) = await rows(org)
    assert row.next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


async def test_the_root_line_pings_nobody_whatever_the_prompt_says(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" <!channel> and <@UADMIN>: standup <https://evil.example|docs>')
    await run_at(org, datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    root = org.slack.bot_messages(CHANNEL)[0]
    shown = root.get("text", "") + str(root.get("blocks", ""))
    assert "<!channel>" not in shown and "<@UADMIN>" not in shown and "|docs>" not in shown
    assert "<@UUSER>" in shown  # who set it: the one mention the bot means


async def test_occurrences_missed_while_down_run_once(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" catch up')
    (ran,) = await run_at(org, datetime(2026, 1, 8, 15, 0, tzinfo=UTC))  # Monday to Thursday missed
    assert ran.outcome == "ok"
    assert await run_at(org, datetime(2026, 1, 8, 15, 1, tzinfo=UTC)) == []
    assert len(await org.settled_records(1)) == 1
    (row,) = await rows(org)
    assert row.next_run_at == datetime(2026, 1, 9, 14, 0, tzinfo=UTC)


async def test_a_refused_run_is_told_once_until_one_is_admitted(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" costly')
    assert "org" in text_of(await org.command("UOWNER", ADMIN, "budget set org daily 0"))
    first = await run_at(org, datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    second = await run_at(org, datetime(2026, 1, 6, 14, 0, tzinfo=UTC))
    assert [r.outcome for r in first + second] == ["refused:budget_exhausted"] * 2
    records = await org.settled_records(2)
    assert [(r.slack_user_id, r.surface, r.outcome) for r in records] == [("UUSER", "schedule", "refused")] * 2
    told = [dm for dm in dms_to(org, "UUSER") if "did not run" in dm]
    assert len(told) == 1 and "#1" in told[0]
    assert org.slack.bot_messages(CHANNEL) == []  # a refused run posts nothing in the channel
    await org.command("UOWNER", ADMIN, "budget set org daily none")
    assert [r.outcome for r in await run_at(org, datetime(2026, 1, 7, 14, 0, tzinfo=UTC))] == ["ok"]
    await org.command("UOWNER", ADMIN, "budget set org daily 0")
    await run_at(org, datetime(2026, 1, 8, 14, 0, tzinfo=UTC))
    assert len([dm for dm in dms_to(org, "UUSER") if "did not run" in dm]) == 2  # told again after a good run


async def test_a_channel_the_bot_cannot_post_in_is_told_once(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" hello')
    org.slack.fail_next("chat.postMessage", "not_in_channel")  # the root line
    first = await run_at(org, datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    org.slack.fail_next("chat.postMessage", "not_in_channel")  # the next occurrence's
    second = await run_at(org, datetime(2026, 1, 6, 14, 0, tzinfo=UTC))
    assert [r.outcome for r in first + second] == ["not_posted"] * 2
    told = [dm for dm in dms_to(org, "UUSER") if "could not post" in dm]
    assert len(told) == 1 and "/invite" in told[0]
    assert [r.outcome for r in await org.settled_records(2)] == ["error", "error"]


async def test_losing_the_role_pauses_once_and_the_role_back_resumes(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" daily')
    await org.command("UADMIN", ADMIN, "revoke <@UUSER>")
    assert await run_at(org, datetime(2026, 1, 5, 14, 0, tzinfo=UTC)) == []
    assert await run_at(org, datetime(2026, 1, 6, 14, 0, tzinfo=UTC)) == []
    paused = [dm for dm in dms_to(org, "UUSER") if "is paused" in dm]
    assert len(paused) == 1 and "no schedules" in paused[0]
    assert await org.records() == []  # nothing asked while paused
    assert "paused" in await schedule_list(org, "UADMIN")
    await org.grant("UUSER", Role.USER)
    assert await run_at(org, datetime(2026, 1, 6, 15, 0, tzinfo=UTC)) == []  # resumed, waiting for its next fire
    assert any("runs again" in dm for dm in dms_to(org, "UUSER"))
    (row,) = await rows(org)
    assert row.state == "active" and row.next_run_at == datetime(2026, 1, 7, 14, 0, tzinfo=UTC)
    assert [r.outcome for r in await run_at(org, datetime(2026, 1, 7, 14, 0, tzinfo=UTC))] == ["ok"]


async def test_a_creator_slack_no_longer_knows_is_paused_once(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" daily')
    org.slack.users["UUSER"]["deleted"] = True
    org.runtime.directory._cache.clear()  # the profile as Slack gives it now (the cache lasts minutes)
    await run_at(org, datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    await run_at(org, datetime(2026, 1, 6, 14, 0, tzinfo=UTC))
    (row,) = await rows(org)
    assert (row.state, row.paused_reason) == ("paused", "left")
    assert len([dm for dm in dms_to(org, "UUSER") if "is paused" in dm]) == 1


async def test_forget_and_offboard_remove_the_prompt_text_and_retention_keeps_it(org: Harness) -> None:
    await schedule(org, "UUSER", '"every day 09:00" words of mine')
    await schedule(org, "UPOWER", '"every day 09:00" words of power')
    org.clock.now = WINTER_MONDAY + timedelta(days=400)  # far past RETENTION_DAYS
    await purge_expired(org.runtime.engine, org.clock, org.runtime.settings, actor="test")
    assert len(await rows(org)) == 2
    forgot = text_of(await org.command("UADMIN", ADMIN, "forget <@UUSER>"))
    assert "1 schedule." in forgot
    assert [row.slack_user_id for row in await rows(org)] == ["UPOWER"]
    result = await org.service(Offboarding).offboard_user(actor_id="UADMIN", actor_role=Role.ADMIN, user_id="UPOWER")
    assert any("1 scheduled prompt removed" in step.detail for step in result.steps)
    assert await rows(org) == []
    stored = str(await org.table_snapshot())
    assert "words of mine" not in stored and "words of power" not in stored


# -- across processes ------------------------------------------------------------------------------------------


async def test_two_processes_run_one_occurrence_once(harness_factory) -> None:
    first = await people(await harness_factory())
    second = await harness_factory()  # its own engine and its own Slack runner: another process
    await schedule(first, "UUSER", '"every day 09:00" once please')
    first.clock.now = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    runs = await asyncio.gather(first.runtime.schedules.run_due(), second.runtime.schedules.run_due(),
                                first.runtime.schedules.run_due())
    assert sorted(r.outcome for ran in runs for r in ran if r.outcome != "taken") == ["ok"]
    assert len(await first.settled_records(1)) == 1
    assert len(first.anthropic.message_requests()) == 1


async def test_only_the_leader_runs_schedules(harness_factory) -> None:
    first = await people(await harness_factory())
    second = await harness_factory()
    await schedule(first, "UUSER", '"every day 09:00" leader only')
    made = []
    try:
        for h, holder in ((first, "process-a"), (second, "process-b")):
            jobs = JobScheduler(db=h.runtime.db, clock=h.clock, settings=h.runtime.settings, client=h.runtime.client,
                                holder=holder, schedules=h.runtime.schedules)
            made.append(jobs)
            await jobs.start()
        leader, follower = made
        assert (leader.leading, follower.leading) == (True, False)
        assert leader.scheduler.get_job("scheduled_prompts") is not None
        first.clock.now = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
        assert await follower.scheduled_prompts() == []
        assert [r.outcome for r in await leader.scheduled_prompts()] == ["ok"]
    finally:
        for jobs in made:
            await jobs.shutdown()
