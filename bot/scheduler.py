"""APScheduler jobs on the app's event loop: rotation reminders and housekeeping, led by one process at a time.

- Job definitions live in memory: two schedulers sharing a job store run jobs twice (APScheduler's FAQ). What
  must hold across processes comes from the database: a leader lease in `scheduler_state`, renewed every
  RENEW_SECONDS, and the per-key daily claims of the reminders themselves.
- The reminders job fires on REMINDER_CRON in REMINDER_TZ (crontab weekdays translated, see bot/domain/cron).
  coalesce=True with a generous misfire grace: a late wake-up (a suspended host, a busy loop) runs once, late.
- The in-memory store cannot know fires missed while no process ran; the last run is kept in the database,
  and a process that becomes leader runs the reminders once if a fire passed since then ("down across three
  fires → exactly one run on start").
- Retention (docs/channels-and-data.md) runs daily: an hourly check by the leader purges when the last purge, kept
  in the database, is a day old (so a restart neither skips nor repeats it).
- Housekeeping prunes processed Slack event ids. The rpm limit has no state of its own to prune: its window is
  the admitted rows of `request_records` in the last 60 s, and those rows are the usage history, kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.cron import cron_trigger, fires_between
from bot.domain.replies import Reply
from bot.services.access.requests import AccessRequests
from bot.services.access.role_changes import RoleChanges
from bot.services.access.roles import EndedGrant
from bot.services.conversation.claims import prune_events
from bot.services.conversation.process_leases import process_name
from bot.services.conversation.records import Swept, sweep_in_flight
from bot.services.data.retention import PurgeResult, purge_expired
from bot.services.keys.registry import KeyCommandError
from bot.services.keys.reminders import LEADER_LEASE, REMINDERS_JOB, SCHEDULER_ACTOR, ReminderRun, Reminders
from bot.services.ports import SlackPort
from bot.services.schedules.service import CHECK_SECONDS, Ran, ScheduledPrompts
from bot.services.spend.digest import DIGEST_JOB, Digest
from bot.services.spend.reconcile import RECONCILE_JOB, Reconciler, Reconciliation
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.leases import claim_lease, last_run, mark_run, release_lease

log = logging.getLogger(__name__)

LEASE_SECONDS = 90.0
RENEW_SECONDS = 30.0
MISFIRE_GRACE_SECONDS = 6 * 3600  # a reminder up to six hours late is still worth posting
HOUSEKEEPING_MINUTES = 60
ACCESS_EXPIRY_SECONDS = 60  # time-bound grants are ended (and people told) within a minute of their end
EVENT_RETENTION_HOURS = 24
T = TypeVar("T")
RETENTION_JOB = "retention"
RETENTION_PERIOD = timedelta(days=1)
RETENTION_CHECK_MINUTES = 60
SCHEDULES_JOB = "scheduled_prompts"


class JobScheduler:
    """The scheduled jobs of one process. Only `claude-gate serve` starts it (tests build many apps)."""

    def __init__(self, *, db: Database, clock: Clock, settings: Settings,
                 client: AsyncWebClient, holder: str | None = None, lease_seconds: float = LEASE_SECONDS,
                 renew_seconds: float = RENEW_SECONDS, slack: SlackPort | None = None,
                 access_requests: AccessRequests | None = None, schedules: ScheduledPrompts | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.client = client
        if slack is None:
            from bot.slack.directory import UserDirectory
            from bot.slack.slack_port import SlackApiPort

            slack = SlackApiPort(client, UserDirectory(client))
        self.slack = slack
        if access_requests is None:
            from bot.slack.access_requests import SlackRequestBoard

            access_requests = AccessRequests(db=db, settings=settings, clock=clock, slack=slack,
                                             board=SlackRequestBoard(client))
        self.access_requests = access_requests
        self.reminders = Reminders(db=db, settings=settings, clock=clock, slack=slack)
        self.role_changes = RoleChanges(db=db, settings=settings, clock=clock, slack=slack)
        self.schedules = schedules  # scheduled prompts run here (the Runtime's, with its Slack runner); None: not
        self.holder = holder or process_name()
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.zone = ZoneInfo(settings.reminder_tz)
        self.trigger = cron_trigger(settings.reminder_cron, self.zone)
        self.scheduler = AsyncIOScheduler(timezone=self.zone, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS})
        self.leading = False
        self._run_lock = asyncio.Lock()

    @property
    def reminders_enabled(self) -> bool:
        return bool(self.settings.reminder_channel)

    @property
    def next_reminder_run(self) -> datetime | None:
        job = self.scheduler.get_job(REMINDERS_JOB)
        return job.next_run_time if job is not None else None

    async def start(self) -> None:
        """Add the jobs, start APScheduler on the running loop, and try to lead (running a missed reminder)."""
        self.scheduler.add_job(self.keep_leadership, IntervalTrigger(seconds=self.renew_seconds, timezone=self.zone),
                               id="leadership", name="scheduler leader lease")
        if self.reminders_enabled:
            self.scheduler.add_job(self.scheduled_reminders, self.trigger, id=REMINDERS_JOB,
                                   name="API key rotation reminders")
        else:
            log.info("REMINDER_CHANNEL is not set: no rotation reminders are scheduled")
        self.scheduler.add_job(self.housekeeping, IntervalTrigger(minutes=HOUSEKEEPING_MINUTES, timezone=self.zone),
                               id="housekeeping", name="prune processed Slack events")
        self.scheduler.add_job(self.sweep, IntervalTrigger(seconds=self.settings.sweep_interval_seconds,
                                                           timezone=self.zone),
                               id="sweep", name="close records left in flight")
        self.scheduler.add_job(self.end_expired_access, IntervalTrigger(seconds=ACCESS_EXPIRY_SECONDS,
                                                                        timezone=self.zone),
                               id="access_expiry", name="end time-bound grants")
        self.scheduler.add_job(self.daily_retention, IntervalTrigger(minutes=RETENTION_CHECK_MINUTES,
                                                                     timezone=self.zone),
                               id=RETENTION_JOB, name="retention purge (daily)",
                               next_run_time=datetime.now(self.zone) + timedelta(minutes=1))
        self.scheduler.add_job(self.daily_digest, IntervalTrigger(minutes=RETENTION_CHECK_MINUTES, timezone=self.zone),
                               id=DIGEST_JOB, name="the admins' daily digest (08:00 BUDGET_TZ)",
                               next_run_time=datetime.now(self.zone) + timedelta(minutes=1))
        if self.settings.anthropic_admin_key is not None:  # Anthropic's cost report needs the Admin API
            self.scheduler.add_job(self.daily_reconciliation, IntervalTrigger(minutes=RETENTION_CHECK_MINUTES,
                                                                              timezone=self.zone),
                                   id=RECONCILE_JOB, name="reconciliation with Anthropic's cost report (daily)",
                                   next_run_time=datetime.now(self.zone) + timedelta(minutes=2))
        if self.schedules is not None:
            self.scheduler.add_job(self.scheduled_prompts, IntervalTrigger(seconds=CHECK_SECONDS, timezone=self.zone),
                                   id=SCHEDULES_JOB, name="scheduled prompts (each occurrence once)")
        self.scheduler.start()
        await self.keep_leadership()
        if self.reminders_enabled:
            log.info("rotation reminders: %s (%s), next run %s", self.settings.reminder_cron,
                     self.settings.reminder_tz, self.next_reminder_run)

    async def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.leading:
            self.leading = False
            try:
                async with self.db.sessions.begin() as session:
                    await release_lease(session, LEADER_LEASE, self.holder)
            except Exception as exc:  # the lease expires by itself
                log.warning("could not release the scheduler lease: %s", type(exc).__name__)

    async def keep_leadership(self) -> bool:
        """Take or renew the leader lease; on becoming leader, run a reminder missed while nobody led."""
        try:
            async with self.db.sessions.begin() as session:
                leading = await claim_lease(session, LEADER_LEASE, self.holder, self.clock(), self.lease_seconds)
        except Exception as exc:
            log.warning("could not renew the scheduler lease (%s): not leading until the database answers",
                        type(exc).__name__)
            leading = False
        became_leader = leading and not self.leading
        if self.leading and not leading:
            log.info("another process leads the scheduled jobs now")
        self.leading = leading
        if became_leader:
            log.info("this process (%s) leads the scheduled jobs", self.holder)
            await self.sweep()  # at start-up: answers cut while nobody led
            await self.catch_up()
        return leading

    async def catch_up(self) -> ReminderRun | None:
        """One run if a scheduled fire passed since the last run (however many fires passed)."""
        if not self.reminders_enabled:
            return None
        async with self._run_lock:
            now = self.clock()
            async with self.db.sessions.begin() as session:
                last = await last_run(session, REMINDERS_JOB)
                if last is None:  # the first start on this database: the schedule begins now
                    await mark_run(session, REMINDERS_JOB, now)
                    return None
            if not fires_between(self.trigger, last, now):
                return None
            log.info("a rotation reminder was due while no process ran (last run %s): running it once now",
                     f"{last:%Y-%m-%d %H:%M} UTC")
            return await self._remind()

    async def scheduled_reminders(self) -> ReminderRun | None:
        """The cron job: the leader runs the reminders unless this fire was already served."""
        if not await self.keep_leadership():
            return None
        async with self._run_lock:
            async with self.db.sessions() as session:
                last = await last_run(session, REMINDERS_JOB)
            if last is not None and not fires_between(self.trigger, last, self.clock()):
                return None
            return await self._remind()

    async def _remind(self) -> ReminderRun | None:
        try:
            run = await self.reminders.run_reminders(actor_id=SCHEDULER_ACTOR)
        except KeyCommandError as exc:
            log.warning("rotation reminders not posted: %s", exc)
            return None
        except Exception:
            log.exception("rotation reminders failed")
            return None
        log.info("rotation reminders: %d posted, %d already reminded today, %d DMs", len(run.reminded),
                 len(run.already_reminded), len(run.direct_messages))
        return run

    async def sweep(self) -> list[Swept]:
        """Leader only: close records in flight longer than ANSWER_TIMEOUT_SECONDS + SWEEP_MARGIN_SECONDS."""
        if not self.leading:
            return []
        try:
            return await sweep_in_flight(self.db.sessions, self.slack, now=self.clock(),
                                         answer_timeout_seconds=self.settings.answer_timeout_seconds,
                                         margin_seconds=self.settings.sweep_margin_seconds)
        except Exception:
            log.exception("sweeping records left in flight failed")
            return []

    async def end_expired_access(self) -> list[EndedGrant]:
        """Leader only: end time-bound grants that have passed and expire access requests undecided for seven days;
        the people are told, all of it audited."""
        if not self.leading:
            return []
        try:
            ended = await self.role_changes.end_expired_grants_and_tell()
        except Exception:
            log.exception("ending expired grants failed")
            ended = []
        try:
            expired = await self.access_requests.expire_old()
        except Exception:
            log.exception("expiring access requests failed")
            expired = []
        if ended or expired:
            log.info("ended %d time-bound grant(s), expired %d access request(s)", len(ended), len(expired))
        return ended

    async def daily_retention(self) -> PurgeResult | None:
        """Leader only: purge once a day (the last purge is kept in the database)."""
        if not self.leading:
            return None
        try:
            now = self.clock()
            async with self.db.sessions() as session:
                last = await last_run(session, RETENTION_JOB)
            if last is not None and now - last < RETENTION_PERIOD:
                return None
            result = await purge_expired(self.db.engine, self.clock, self.settings, actor=SCHEDULER_ACTOR)
            async with self.db.sessions.begin() as session:
                await mark_run(session, RETENTION_JOB, now)
            return result
        except Exception:
            log.exception("the retention purge failed; it is tried again within the hour")
            return None

    async def daily_digest(self) -> Reply | None:
        """Leader only: yesterday's digest for the admins, once a day from 08:00 in BUDGET_TZ (a missed one runs
        at the next hourly check)."""
        return await self._hourly_as_leader("the daily digest", Digest(
            db=self.db, settings=self.settings, clock=self.clock, slack=self.slack).run_due)

    async def daily_reconciliation(self) -> Reconciliation | None:
        """Leader only: yesterday's cost beside Anthropic's, once a day, alerting a drift (bot/services/spend)."""
        return await self._hourly_as_leader("the daily reconciliation", Reconciler(
            db=self.db, settings=self.settings, clock=self.clock, slack=self.slack).daily)

    async def scheduled_prompts(self) -> list[Ran]:
        """Leader only: every due occurrence of a scheduled prompt, once across processes (bot/services/schedules)."""
        if self.schedules is None or not self.leading:
            return []
        try:
            return await self.schedules.run_due()
        except Exception:
            log.exception("the scheduled prompts' check failed; it runs again within a minute")
            return []

    async def _hourly_as_leader(self, what: str, work: Callable[[], Awaitable[T]]) -> T | None:
        """An hourly job's ``work`` (which decides itself whether today's run is due), on the leader only; a
        failure is logged and the job is tried again at the next check."""
        if not self.leading:
            return None
        try:
            return await work()
        except Exception:
            log.exception("%s failed; it is tried again within the hour", what)
            return None

    async def housekeeping(self) -> int:
        """Prune processed Slack event ids older than a day (leader only; Slack retries for minutes)."""
        if not self.leading:
            return 0
        try:
            pruned = await prune_events(self.db, self.clock, keep_hours=EVENT_RETENTION_HOURS)
        except Exception:
            log.exception("housekeeping failed")
            return 0
        if pruned:
            log.info("housekeeping: pruned %d processed Slack event ids", pruned)
        return pruned
