"""Rotation reminders: which keys, one message, creators told by DM, once per calendar day (in REMINDER_TZ),
whoever runs them and however often."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.services.keys.registry import KeyCommandError
from bot.services.keys.reminders import ReminderRun, Reminders
from bot.slack import render_keys
from bot.slack.safe_text import safe_text
from bot.store.clock import ManualClock
from bot.store.models import ApiKey
from tests.support.harness import Harness

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CHANNEL = "CREMIND"


@pytest.fixture
async def reminding(harness_factory, clock: ManualClock) -> Harness:
    clock.now = MONDAY
    return await harness_factory(reminder_channel=CHANNEL)


async def add_row(h: Harness, label: str, *, age_days: float, rotate_days: int = 90, status: str = "active",
                  env_var: str | None = "SOME_KEY", created_by: str | None = None, creator_email: str | None = None,
                  workspace: str = "default") -> None:
    async with h.sessions.begin() as session:
        session.add(ApiKey(label=label, workspace=workspace, env_var=env_var, status=status, rotate_days=rotate_days,
                           created_at=h.clock() - timedelta(days=age_days), created_by=created_by,
                           creator_email=creator_email))


async def remind(h: Harness) -> ReminderRun:
    return await h.service(Reminders).run_reminders(actor_id="UADMIN")


def posts(h: Harness) -> list[dict]:
    return h.slack.bot_messages(CHANNEL)


async def test_keys_due_within_the_window_or_overdue_are_posted_in_one_message(reminding: Harness) -> None:
    h = reminding
    await add_row(h, "overdue", age_days=100)  # rotate-by 10 days ago
    await add_row(h, "due-soon", age_days=85)  # in 5 days
    await add_row(h, "edge", age_days=76)  # in exactly REMIND_BEFORE_DAYS = 14 days
    await add_row(h, "not-yet", age_days=75)  # in 15 days
    await add_row(h, "short", age_days=25, rotate_days=30)
    await add_row(h, "revoked-old", age_days=300, status="revoked")
    await add_row(h, "inactive-old", age_days=300, status="inactive", env_var=None)
    await add_row(h, "org-key", age_days=120, env_var=None)  # from `keys sync`, not used by Claude Gate
    await add_row(h, "failing-old", age_days=95, status="failing")
    run = await remind(h)
    assert [key.label for key in run.reminded] == ["org-key", "overdue", "failing-old", "due-soon", "short", "edge"]
    assert [key.rotation.days_left for key in run.reminded] == [-30, -10, -5, 5, 5, 14]
    (message,) = posts(h)
    assert message["ts"] == run.message_ts
    text = message["text"] + json.dumps(message["blocks"])
    for label in ("overdue", "due-soon", "edge", "org-key", "short", "failing-old"):
        assert f"*{label}*" in text
    for label in ("not-yet", "revoked-old", "inactive-old"):
        assert label not in text
    assert "overdue by 10 d" in text and "rotate by 2026-02-20" in text and "100 d old" in text
    assert "not used by Claude Gate" in text
    assert len(message["blocks"]) <= 50


async def test_a_key_is_reminded_at_most_once_per_calendar_day(reminding: Harness, harness_factory) -> None:
    h = reminding
    await add_row(h, "overdue", age_days=100)
    assert len((await remind(h)).reminded) == 1
    h.clock.advance(6 * 3600)
    second = await remind(h)
    assert second.reminded == [] and second.already_reminded == ["overdue"] and second.message_ts is None
    other_process = await harness_factory(reminder_channel=CHANNEL)
    assert (await remind(other_process)).reminded == []
    assert len(posts(h)) == 1
    h.clock.now = MONDAY.replace(hour=0, minute=1) + timedelta(days=1)  # just after midnight: a new day
    assert [k.label for k in (await remind(h)).reminded] == ["overdue"]
    assert len(posts(h)) == 2
    audit = [e for e in await h.audit() if e.action == "reminders.run"]
    assert len(audit) == 2 and audit[0].detail["keys"] == ["overdue"]


async def test_concurrent_runs_in_two_processes_post_once(reminding: Harness, harness_factory) -> None:
    h = reminding
    other = await harness_factory(reminder_channel=CHANNEL)
    for n in range(5):
        await add_row(h, f"old-{n}", age_days=100 + n)
    runs = await asyncio.gather(remind(h), remind(other), remind(h), remind(other))
    assert sorted(len(run.reminded) for run in runs) == [0, 0, 0, 5]
    assert len(posts(h)) == 1


async def test_the_calendar_day_is_the_day_in_REMINDER_TZ(harness_factory, clock: ManualClock) -> None:
    clock.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 22:00 on Monday 5 January in Auckland (UTC+13)
    h = await harness_factory(reminder_channel=CHANNEL, reminder_tz="Pacific/Auckland")
    await add_row(h, "overdue", age_days=100)
    first = await remind(h)
    assert first.today == date(2026, 1, 5) and len(first.reminded) == 1
    h.clock.advance(3 * 3600)  # 12:00 UTC, still 5 January in UTC, but 01:00 on 6 January in Auckland
    second = await remind(h)
    assert second.today == date(2026, 1, 6) and len(second.reminded) == 1
    async with h.sessions() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.label == "overdue"))
    assert row is not None and row.last_reminded_on == date(2026, 1, 6)


async def test_same_moments_in_UTC_are_one_day(harness_factory, clock: ManualClock) -> None:
    clock.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    h = await harness_factory(reminder_channel=CHANNEL)
    await add_row(h, "overdue", age_days=100)
    assert len((await remind(h)).reminded) == 1
    h.clock.advance(3 * 3600)
    assert (await remind(h)).reminded == []


async def test_creators_are_told_by_dm(reminding: Harness) -> None:
    h = reminding
    h.slack.add_user("U0ANA", email="ana@example.com")
    await add_row(h, "registered-by-admin", age_days=100, created_by="U0ADMIN")
    await add_row(h, "made-by-ana", age_days=95, env_var=None, creator_email="ana@example.com")
    await add_row(h, "also-ana", age_days=92, env_var=None, creator_email="ana@example.com")
    await add_row(h, "by-a-stranger", age_days=91, env_var=None, creator_email="stranger@elsewhere.example")
    await add_row(h, "from-the-shell", age_days=99, created_by="cli")
    run = await remind(h)
    assert sorted(run.direct_messages) == ["U0ADMIN", "U0ANA"]
    assert run.dm_failures == ["stranger@elsewhere.example (users_not_found)"]
    ana = h.slack.bot_messages("DU0ANA")
    assert len(ana) == 1 and "made-by-ana" in ana[0]["text"] and "also-ana" in ana[0]["text"]
    assert "registered-by-admin" in h.slack.bot_messages("DU0ADMIN")[0]["text"]
    text = safe_text(render_keys.reminder_run(run)[0])  # as Slack gets it
    assert "Could not DM" in text and "<@U0ANA>" in text


async def test_a_refused_post_gives_the_claims_back(reminding: Harness) -> None:
    h = reminding
    await add_row(h, "overdue", age_days=100)
    h.slack.fail_next("chat.postMessage", "not_in_channel")
    with pytest.raises(KeyCommandError, match="not_in_channel"):
        await remind(h)
    async with h.sessions() as session:
        assert (await session.scalar(select(ApiKey.last_reminded_on).where(ApiKey.label == "overdue"))) is None
    assert len((await remind(h)).reminded) == 1  # the next run posts it


async def test_nothing_due_posts_nothing_and_no_channel_is_a_clear_error(reminding: Harness, harness_factory) -> None:
    run = await remind(reminding)
    assert run.reminded == [] and posts(reminding) == []
    unset = await harness_factory()
    with pytest.raises(KeyCommandError, match="REMINDER_CHANNEL is not set"):
        await remind(unset)


async def test_the_schedule_shows_the_next_runs_in_REMINDER_TZ(harness_factory, clock: ManualClock) -> None:
    clock.now = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # Friday, before the European DST change
    h = await harness_factory(reminder_channel=CHANNEL, reminder_tz="Europe/Berlin")
    await add_row(h, "overdue", age_days=100)
    schedule = await h.service(Reminders).reminder_schedule()
    assert [f"{run:%a %d %H:%M %Z}" for run in schedule.next_runs] == [
        "Mon 30 09:00 CEST", "Tue 31 09:00 CEST", "Wed 01 09:00 CEST"]
    assert [key.label for key in schedule.due] == ["overdue"] and schedule.leader is None
    text, blocks = render_keys.reminder_schedule(schedule)
    assert "0 9 * * 1-5" in text and "no process is running the scheduler" in json.dumps(blocks)
