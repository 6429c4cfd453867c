"""Key-rotation reminders (docs/keys.md): keys due within REMIND_BEFORE_DAYS or overdue, posted once per day.

"Once per calendar day" is a claim on each key: `last_reminded_on` is set to today's date in REMINDER_TZ in one
locking transaction, so two runs (a restart, a second process, `reminders run`) never remind a key twice in
a day. A failed post gives the claims back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cron import cron_trigger, upcoming_fires
from bot.domain.keys import Rotation, rotation_of
from bot.domain.mentions import channel_link, mention
from bot.domain.replies import Answer
from bot.services.base import Service
from bot.services.data.audit import add_audit
from bot.services.keys.choice import USABLE_STATUSES
from bot.services.keys.registry import KeyCommandError, creator_of, rotation_start, slack_user_of
from bot.services.ports import SlackCallFailed, SlackPort
from bot.store.leases import current_lease, last_run, mark_run
from bot.store.models import ApiKey

log = logging.getLogger(__name__)

REMINDERS_JOB = "reminders"
LEADER_LEASE = "scheduler.leader"
SCHEDULER_ACTOR = "scheduler"


@dataclass(frozen=True)
class DueKey:
    label: str
    workspace: str
    hint: str | None
    status: str
    rotation: Rotation
    creator: str | None  # as shown: a Slack mention, an email, an Anthropic user id
    registered: bool  # used by Claude Gate (else only known from `keys sync`)


@dataclass(frozen=True)
class ReminderRun(Answer):
    ran_at: datetime
    today: date  # in REMINDER_TZ
    channel: str
    reminded: list[DueKey]  # posted by this run
    already_reminded: list[str]  # due, but reminded earlier today
    message_ts: str | None
    direct_messages: list[str]  # Slack users told about their keys
    dm_failures: list[str]


@dataclass(frozen=True)
class ReminderSchedule(Answer):
    cron: str
    timezone: str
    channel: str | None
    remind_before_days: int
    rotation_days: int
    next_runs: list[datetime]  # in REMINDER_TZ
    last_run_at: datetime | None
    leader: str | None  # the process running the schedule now, if any
    due: list[DueKey]  # due or overdue now


@dataclass(frozen=True)
class ReminderMessage(Answer):
    """The one message of a reminder run in REMINDER_CHANNEL."""

    keys: list[DueKey]
    today: date
    remind_before_days: int


@dataclass(frozen=True)
class ReminderDM(Answer):
    """A DM to a key's creator about their keys."""

    keys: list[DueKey]
    today: date


@dataclass(frozen=True)
class _Claim:
    key: DueKey
    key_id: int
    previous: date | None
    created_by: str | None
    creator_email: str | None


def _due_key(row: ApiKey, rotation: Rotation) -> DueKey:
    return DueKey(label=row.label, workspace=row.workspace, hint=row.key_hint, status=row.status, rotation=rotation,
                  creator=creator_of(row), registered=row.env_var is not None)


def _by_urgency(keys: list[DueKey]) -> list[DueKey]:
    return sorted(keys, key=lambda k: (k.rotation.days_left, k.workspace, k.label))


class Reminders(Service):
    """Rotation reminders: the schedule (`reminders`) and a run (`reminders run`, `claude-gate remind --now`, the
    scheduled job)."""

    async def reminder_schedule(self) -> ReminderSchedule:
        """The schedule (`reminders`): cron, time zone, the next three runs, the last run, the leader, keys due now."""
        now, zone = self.clock(), ZoneInfo(self.settings.reminder_tz)
        trigger = cron_trigger(self.settings.reminder_cron, zone)
        async with self.sessions() as session:
            last = await last_run(session, REMINDERS_JOB)
            lease = await current_lease(session, LEADER_LEASE, now)
            rows = list(await session.scalars(select(ApiKey).where(ApiKey.status.in_(USABLE_STATUSES))))
        due = [_due_key(row, rotation) for row in rows
               if (rotation := rotation_of(rotation_start(row), row.rotate_days, now, zone)).due_within(
                   self.settings.remind_before_days)]
        return ReminderSchedule(
            cron=self.settings.reminder_cron, timezone=self.settings.reminder_tz,
            channel=self.settings.reminder_channel, remind_before_days=self.settings.remind_before_days,
            rotation_days=self.settings.rotation_days,
            next_runs=[fire.astimezone(zone) for fire in upcoming_fires(trigger, now, 3)],
            last_run_at=last, leader=lease.holder if lease else None, due=_by_urgency(due))

    async def run_reminders(self, *, actor_id: str = SCHEDULER_ACTOR) -> ReminderRun:
        """Post one message to REMINDER_CHANNEL listing keys due or overdue that were not reminded today, and DM each
        key's creator when known (`reminders run`, `claude-gate remind --now`, the scheduled job).

        Raises KeyCommandError when REMINDER_CHANNEL is unset or Slack refuses the post (the keys stay unreminded).
        """
        channel = self.settings.reminder_channel
        if not channel:
            raise KeyCommandError("REMINDER_CHANNEL is not set: set it to the ID of the channel for rotation reminders "
                                  "(and invite the bot there).")
        now, zone = self.clock(), ZoneInfo(self.settings.reminder_tz)
        today = now.astimezone(zone).date()
        claims, already = await _claim_due_keys(self.sessions, now, zone, self.settings.remind_before_days)
        reminded = _by_urgency([claim.key for claim in claims])
        message_ts = None
        if reminded:
            message = ReminderMessage(reminded, today=today, remind_before_days=self.settings.remind_before_days)
            try:
                message_ts = await self.slack.deliver(channel, message)
            except Exception as exc:
                await _give_back(self.sessions, claims, today)
                if isinstance(exc, SlackCallFailed):
                    raise KeyCommandError(f"Slack refused the reminder for {channel_link(channel)} ({exc.reason}): "
                                          "invite the bot to that channel or fix REMINDER_CHANNEL.") from exc
                raise
        sent, failures = await _tell_creators(self.slack, claims, today)
        async with self.sessions.begin() as session:
            await mark_run(session, REMINDERS_JOB, now)
            if reminded:
                add_audit(session, at=now, actor=actor_id, action="reminders.run", target=channel,
                          keys=[key.label for key in reminded], direct_messages=len(sent), dm_failures=len(failures))
        return ReminderRun(ran_at=now, today=today, channel=channel, reminded=reminded, already_reminded=already,
                           message_ts=message_ts, direct_messages=sent, dm_failures=failures)


async def _claim_due_keys(sessions: async_sessionmaker[AsyncSession], now: datetime, zone: ZoneInfo,
                          remind_before_days: int) -> tuple[list[_Claim], list[str]]:
    """Claim today's reminder of every due key not yet reminded today (rows locked: concurrent runs queue)."""
    today = now.astimezone(zone).date()
    claims: list[_Claim] = []
    already: list[str] = []
    async with sessions.begin() as session:
        rows = await session.scalars(
            select(ApiKey).where(ApiKey.status.in_(USABLE_STATUSES)).order_by(ApiKey.id).with_for_update())
        for row in rows:
            rotation = rotation_of(rotation_start(row), row.rotate_days, now, zone)
            if not rotation.due_within(remind_before_days):
                continue
            if row.last_reminded_on is not None and row.last_reminded_on >= today:
                already.append(row.label)
                continue
            claims.append(_Claim(_due_key(row, rotation), row.id, row.last_reminded_on, row.created_by,
                                 row.creator_email))
            row.last_reminded_on = today
    return claims, already


async def _give_back(sessions: async_sessionmaker[AsyncSession], claims: list[_Claim], today: date) -> None:
    async with sessions.begin() as session:
        for claim in claims:
            await session.execute(update(ApiKey).where(ApiKey.id == claim.key_id, ApiKey.last_reminded_on == today)
                                  .values(last_reminded_on=claim.previous)
                                  .execution_options(synchronize_session=False))


async def _tell_creators(slack: SlackPort, claims: list[_Claim], today: date) -> tuple[list[str], list[str]]:
    """DM each known creator (a Slack registrant, or the Slack user with the Anthropic creator's email)."""
    keys_of: dict[str, list[DueKey]] = defaultdict(list)
    failures: list[str] = []
    emails: dict[str, str | None] = {}
    for claim in claims:
        people = {user for user in [slack_user_of(claim.created_by)] if user}
        if claim.creator_email:
            if claim.creator_email not in emails:
                emails[claim.creator_email] = await _slack_user_by_email(slack, claim.creator_email, failures)
            if emails[claim.creator_email]:
                people.add(str(emails[claim.creator_email]))
        for person in people:
            keys_of[person].append(claim.key)
    sent: list[str] = []
    for person, keys in keys_of.items():
        try:
            await slack.deliver(person, ReminderDM(_by_urgency(keys), today=today))
            sent.append(person)
        except SlackCallFailed as exc:
            log.warning("rotation reminder DM to %s failed: %s", person, exc.reason)
            failures.append(f"{mention(person)} ({exc.reason})")
    return sent, failures


async def _slack_user_by_email(slack: SlackPort, email: str, failures: list[str]) -> str | None:
    try:
        return await slack.user_by_email(email)
    except SlackCallFailed as exc:
        failures.append(f"{email} ({exc.reason})")
        return None
