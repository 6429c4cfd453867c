"""Crontab expressions as people write them, turned into APScheduler 3 cron triggers.

Two traps of APScheduler 3 are handled here:
- its day-of-week 0 is Monday, while crontab's 0 (and 7) is Sunday, and ``CronTrigger.from_crontab``
  passes the numbers through unchanged (agronholm/apscheduler#286): ``0 9 * * 1-5`` would run Tuesday to
  Saturday. Day-of-week numbers are therefore translated to day names;
- the trigger must be given its time zone explicitly (#346, #667), and ``now`` in UTC: a local time in a
  repeated DST hour loses its ``fold`` in APScheduler's arithmetic and can answer a fire time in the past.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 and 7 are Sunday
MONDAY_FIRST = (1, 2, 3, 4, 5, 6, 0)


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token[:3] in CRONTAB_DAYS and len(token) >= 3:
        return CRONTAB_DAYS.index(token[:3])
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


def crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field in APScheduler 3 terms: ``*`` or a list of day names (``1-5`` → mon,…,fri)."""
    field = field.strip().lower()
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) >= 1):
            raise ValueError(f"{item!r} has an invalid step")
        step = int(step_text) if slash else 1
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _day_number(first), _day_number(last)
            if high < low:
                raise ValueError(f"{item!r} runs backwards")
        else:
            low = _day_number(base)
            high = 6 if slash else low
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(CRONTAB_DAYS[day] for day in MONDAY_FIRST if day in days)


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
