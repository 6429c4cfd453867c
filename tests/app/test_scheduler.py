"""The scheduler: crontab weekdays and DST in REMINDER_TZ, one leader at a time, missed runs run once on start,
the real APScheduler job, housekeeping, and `claude-gate serve` running it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from bot.config import Settings
from bot.cron import cron_trigger, upcoming_fires
from bot.domain.cron import crontab_day_of_week
from bot.scheduler import MISFIRE_GRACE_SECONDS, JobScheduler
from bot.services.conversation.claims import claim_event
from bot.services.keys.reminders import LEADER_LEASE, REMINDERS_JOB
from bot.store.clock import ManualClock, system_clock
from bot.store.db import Database, create_engine, session_factory
from bot.store.leases import current_lease, last_run, mark_run
from bot.store.models import ApiKey, ProcessedEvent
from tests.support.harness import API_KEY, BOT_TOKEN, ON_POSTGRES, SIGNING_SECRET, Harness, eventually

CHANNEL = "CREMIND"
ROOT = Path(__file__).resolve().parents[2]


def fires(expression: str, zone: str, after: datetime, count: int) -> list[str]:
    return [f"{fire:%a %d %H:%M}" for fire in upcoming_fires(cron_trigger(expression, zone), after, count)]


# -- crontab and time zones ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "names"), [
    ("1-5", "mon,tue,wed,thu,fri"), ("0", "sun"), ("7", "sun"), ("sun", "sun"), ("mon-fri", "mon,tue,wed,thu,fri"),
    ("*/2", "tue,thu,sat,sun"), ("1,3,5", "mon,wed,fri"), ("5-7", "fri,sat,sun"), ("*", "*"),
])
def test_crontab_weekdays_become_day_names(field: str, names: str) -> None:
    assert crontab_day_of_week(field) == names


@pytest.mark.parametrize("field", ["8", "mon-sun-x", "fri-mon", "1/0", "funday"])
def test_bad_weekdays_are_refused(field: str) -> None:
    with pytest.raises(ValueError):
        crontab_day_of_week(field)


def test_the_default_cron_runs_monday_to_friday() -> None:
    friday = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    assert fires("0 9 * * 1-5", "UTC", friday, 5) == ["Mon 09 09:00", "Tue 10 09:00", "Wed 11 09:00", "Thu 12 09:00",
                                                      "Fri 13 09:00"]
    # why the translation exists: APScheduler 3's own from_crontab reads 1-5 as Tuesday to Saturday (#286)
    naive = CronTrigger.from_crontab("0 9 * * 1-5", timezone=UTC)
    assert naive.get_next_fire_time(None, friday).strftime("%a") == "Sat"


def test_a_non_utc_schedule_keeps_local_time_across_the_spring_dst_change() -> None:
    before = datetime(2026, 3, 26, 12, 0, tzinfo=UTC)  # Europe changes to summer time on Sunday 29 March 2026
    assert fires("0 9 * * 1-5", "Europe/Berlin", before, 3) == ["Fri 27 08:00", "Mon 30 07:00", "Tue 31 07:00"]
    # 02:30 does not exist on 29 March in Berlin: it runs once that day, at 03:30 summer time
    assert fires("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, 0, tzinfo=UTC), 3) == [
        "Sun 29 01:30", "Mon 30 00:30", "Tue 31 00:30"]


def test_the_repeated_autumn_hour_fires_twice() -> None:
    after = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)  # back to winter time on Sunday 25 October 2026
    assert fires("30 2 * * *", "Europe/Berlin", after, 3) == ["Sun 25 00:30", "Sun 25 01:30", "Mon 26 01:30"]
    # given a local time in the repeated hour (fold=1), the answer is still strictly later
    second = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert fires("30 2 * * *", "Europe/Berlin", second, 1) == ["Mon 26 01:30"]


# -- a scheduler per "process" -------------------------------------------------------------------------------


@pytest.fixture
async def schedulers() -> AsyncIterator[Callable[..., Any]]:
    made: list[JobScheduler] = []

    async def make(h: Harness, holder: str, *, start: bool = True) -> JobScheduler:
        jobs = JobScheduler(db=h.runtime.db, clock=h.clock, settings=h.runtime.settings, client=h.runtime.client,
                            holder=holder)
        made.append(jobs)
        if start:
            await jobs.start()
        return jobs

    yield make
    for jobs in made:
        await jobs.shutdown()


async def overdue_key(h: Harness, label: str = "old-key") -> None:
    async with h.sessions.begin() as session:
        session.add(ApiKey(label=label, workspace="default", env_var="SOME_KEY", status="active", rotate_days=90,
                           created_at=h.clock() - timedelta(days=120)))


async def set_last_run(h: Harness, at: datetime) -> None:
    async with h.sessions.begin() as session:
        await mark_run(session, REMINDERS_JOB, at)


def posts(h: Harness) -> list[dict[str, Any]]:
    return h.slack.bot_messages(CHANNEL)


async def test_down_across_three_fires_runs_exactly_once_on_start(harness_factory, clock: ManualClock,
                                                                  schedulers) -> None:
    clock.now = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)  # Monday, just after the 09:00 run
    h = await harness_factory(reminder_channel=CHANNEL)
    await overdue_key(h)
    await set_last_run(h, clock.now)
    clock.now = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)  # Thursday: the Tue, Wed and Thu runs were missed
    await (await schedulers(h, "first-start")).shutdown()
    assert len(posts(h)) == 1
    async with h.sessions() as session:
        assert await last_run(session, REMINDERS_JOB) == clock.now
    await (await schedulers(h, "restart")).shutdown()
    assert len(posts(h)) == 1  # nothing was missed since
    clock.now = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # down from Thursday to Monday: Fri and Mon missed
    await (await schedulers(h, "monday")).shutdown()
    assert len(posts(h)) == 2


async def test_a_fresh_database_starts_the_schedule_without_a_run(harness_factory, schedulers) -> None:
    h = await harness_factory(reminder_channel=CHANNEL)
    await overdue_key(h)
    jobs = await schedulers(h, "a")
    assert jobs.leading and posts(h) == []
    async with h.sessions() as session:
        assert await last_run(session, REMINDERS_JOB) == h.clock()


async def test_one_leader_and_one_post_for_two_schedulers(harness_factory, clock: ManualClock, schedulers) -> None:
    clock.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    first = await harness_factory(reminder_channel=CHANNEL)
    second = await harness_factory(reminder_channel=CHANNEL)  # its own engine: another process
    await overdue_key(first)
    a, b = await schedulers(first, "process-a"), await schedulers(second, "process-b")
    assert (a.leading, b.leading) == (True, False)
    clock.now = datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC)
    assert await a.keep_leadership()  # the renew tick A runs every RENEW_SECONDS while the clock moves on
    # the 09:00 fire, in both processes at once
    runs = await asyncio.gather(a.scheduled_reminders(), b.scheduled_reminders(), a.scheduled_reminders())
    assert sum(run is not None and len(run.reminded) for run in runs) == 1
    assert len(posts(first)) == 1
    async with first.sessions() as session:
        lease = await current_lease(session, LEADER_LEASE, clock())
    assert lease is not None and lease.holder == "process-a"
    clock.advance(a.lease_seconds + 1)  # process A stopped renewing (crashed): B takes over
    assert await b.keep_leadership() and not await a.keep_leadership()
    await b.shutdown()  # a clean stop hands the lease back at once
    assert await a.keep_leadership()
    assert len(posts(first)) == 1


async def test_the_apscheduler_job_fires_on_the_app_loop(harness_factory, clock: ManualClock, schedulers) -> None:
    clock.now = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Berlin: the first start, nothing missed
    h = await harness_factory(reminder_channel=CHANNEL, reminder_tz="Europe/Berlin")
    await overdue_key(h)
    jobs = await schedulers(h, "a")
    job = jobs.scheduler.get_job(REMINDERS_JOB)
    assert job.trigger.timezone == ZoneInfo("Europe/Berlin")
    assert "day_of_week='mon,tue,wed,thu,fri'" in str(job.trigger) and "hour='9'" in str(job.trigger)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, MISFIRE_GRACE_SECONDS)
    assert job.next_run_time.tzinfo == ZoneInfo("Europe/Berlin") and job.next_run_time.hour == 9
    clock.now = datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC)  # 09:00:30 in Berlin: the fire is due
    job.modify(next_run_time=datetime.now(jobs.zone))  # make APScheduler fire it now, on this loop
    jobs.scheduler.wakeup()
    await eventually(lambda: len(posts(h)) == 1)
    assert jobs.scheduler.get_job(REMINDERS_JOB).next_run_time > datetime.now(jobs.zone)


async def test_the_repeated_autumn_hour_reminds_once(harness_factory, clock: ManualClock, schedulers) -> None:
    zone = "Europe/Berlin"
    clock.now = datetime(2026, 10, 24, 0, 30, 5, tzinfo=UTC)
    h = await harness_factory(reminder_channel=CHANNEL, reminder_tz=zone, reminder_cron="30 2 * * *")
    await overdue_key(h)
    await set_last_run(h, clock.now)
    jobs = await schedulers(h, "a")
    for moment in (datetime(2026, 10, 25, 0, 30, 5, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, 5, tzinfo=UTC)):
        clock.now = moment  # 02:30 summer time, then 02:30 winter time: both are 25 October in Berlin
        assert await jobs.scheduled_reminders() is not None
    assert len(posts(h)) == 1
    clock.now = datetime(2026, 10, 26, 1, 30, 5, tzinfo=UTC)
    await jobs.scheduled_reminders()
    assert len(posts(h)) == 2


async def test_no_reminder_job_without_a_channel(harness: Harness, schedulers) -> None:
    jobs = await schedulers(harness, "a")
    assert jobs.scheduler.get_job(REMINDERS_JOB) is None and jobs.next_reminder_run is None
    assert {job.id for job in jobs.scheduler.get_jobs()} == {"leadership", "housekeeping", "access_expiry", "retention",
                                                             "sweep", "digest"}


async def test_housekeeping_prunes_old_event_ids_on_the_leader(harness_factory, schedulers) -> None:
    first = await harness_factory()
    second = await harness_factory()
    await claim_event(first.runtime.db, first.clock, "Ev-old")
    first.clock.advance(25 * 3600)
    await claim_event(first.runtime.db, first.clock, "Ev-new")
    leader, follower = await schedulers(first, "a"), await schedulers(second, "b")
    assert await follower.housekeeping() == 0
    assert await leader.housekeeping() == 1
    async with first.sessions() as session:
        assert list(await session.scalars(select(ProcessedEvent.event_id))) == ["Ev-new"]


async def test_building_the_app_starts_no_scheduler(harness: Harness) -> None:
    assert harness.runtime.jobs is None
    async with harness.sessions() as session:
        assert await current_lease(session, LEADER_LEASE, harness.clock()) is None


# -- real processes ------------------------------------------------------------------------------------------


def _scheduler_process(database_url: str, slack_api_url: str, holder: str) -> bool:
    async def run() -> bool:
        engine = create_engine(database_url)
        settings = Settings(database_url=database_url, slack_bot_token=BOT_TOKEN, slack_api_url=slack_api_url,
                            anthropic_api_key=API_KEY, reminder_channel=CHANNEL, reminder_cron="*/5 * * * *")
        from bot.app import slack_client

        jobs = JobScheduler(db=Database.of(engine), clock=system_clock, settings=settings,
                            client=slack_client(settings), holder=holder)
        await jobs.start()
        leading = jobs.leading
        await asyncio.sleep(0.3)
        await jobs.shutdown()
        await engine.dispose()
        return leading

    return asyncio.run(run())


async def _prepare_missed_run(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        now = system_clock()
        session.add(ApiKey(label="old-key", workspace="default", env_var="SOME_KEY", status="active",
                           rotate_days=90, created_at=now - timedelta(days=120)))
        await mark_run(session, REMINDERS_JOB, now - timedelta(days=1))
    await engine.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="schedulers in several processes are proven on PostgreSQL")
async def test_schedulers_in_four_processes_post_once(database_url: str, fake_slack) -> None:
    await _prepare_missed_run(database_url)
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_scheduler_process, database_url, fake_slack.api_url, f"process-{n}") for n in range(4)]
        leaders = [future.result(timeout=120) for future in futures]
    assert any(leaders)
    assert len(fake_slack.bot_messages(CHANNEL)) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_starts_the_scheduler_and_runs_a_missed_reminder(database_url: str, fake_slack,
                                                                     fake_anthropic, tmp_path: Path) -> None:
    await _prepare_missed_run(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL",
                                                                     "REMINDER_"))}
    env |= {"DATABASE_URL": database_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake_slack.api_url, "ANTHROPIC_API_KEY": API_KEY,
            "ANTHROPIC_BASE_URL": fake_anthropic.base_url, "REMINDER_CHANNEL": CHANNEL,
            "REMINDER_CRON": "*/5 * * * *", "PORT": str(_free_port())}
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await eventually(lambda: fake_slack.bot_messages(CHANNEL) or server.returncode is not None, timeout=30)
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        try:  # serve bounds its own shutdown (27 s, then its stacks and exit 1): this is only the test's backstop
            _out, err = await asyncio.wait_for(server.communicate(), 40)
        except TimeoutError:
            server.kill()
            _out, err = await server.communicate()
    assert server.returncode == 0, err.decode()
    assert len(fake_slack.bot_messages(CHANNEL)) == 1
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(ApiKey).where(
            ApiKey.last_reminded_on.is_not(None))) == 1
        assert await current_lease(session, LEADER_LEASE, system_clock()) is None  # released on SIGTERM
    await engine.dispose()
