"""Crontab expressions turned into APScheduler 3 cron triggers, and the fire times they give.

Two traps of APScheduler 3 are handled here:
- crontab's day-of-week numbers are not APScheduler's (bot/domain/cron.py translates them to day names);
- the trigger must be given its time zone explicitly (#346, #667), and ``now`` in UTC: a local time in a
  repeated DST hour loses its ``fold`` in APScheduler's arithmetic and can answer a fire time in the past.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.domain.cron import crontab_day_of_week


def cron_trigger(expression: str, timezone: str | tzinfo) -> CronTrigger:
    """A CronTrigger for five crontab fields (minute hour day month day-of-week) in ``timezone``.

    When both day-of-month and day-of-week are restricted, both must match (APScheduler's rule).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected five crontab fields, got {len(fields)}")
    minute, hour, day, month, day_of_week = fields
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=crontab_day_of_week(day_of_week), timezone=zone)


def next_fire_after(trigger: CronTrigger, moment: datetime) -> datetime | None:
    """The first fire strictly after ``moment``, in UTC (None if the trigger never fires again)."""
    moment = moment.astimezone(UTC)
    start = moment + timedelta(microseconds=1)
    candidate = trigger.get_next_fire_time(None, start)
    for _ in range(8):  # a repeated DST hour can make APScheduler answer a fire at or before `moment`
        if candidate is None:
            return None
        if candidate.astimezone(UTC) > moment:
            return candidate.astimezone(UTC)
        candidate = trigger.get_next_fire_time(candidate, start)
    return None


def fires_between(trigger: CronTrigger, after: datetime, until: datetime) -> bool:
    """Whether the trigger fires in (after, until]: a run was due and did not happen."""
    upcoming = next_fire_after(trigger, after)
    return upcoming is not None and upcoming <= until.astimezone(UTC)


def upcoming_fires(trigger: CronTrigger, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fires after ``after``, in UTC."""
    fires: list[datetime] = []
    moment = after
    while len(fires) < count:
        upcoming = next_fire_after(trigger, moment)
        if upcoming is None:
            break
        fires.append(upcoming)
        moment = upcoming
    return fires
