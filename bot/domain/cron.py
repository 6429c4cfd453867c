"""Crontab day-of-week fields as people write them, in the terms of APScheduler 3 (pure: bot/cron.py builds the
triggers).

APScheduler 3's day-of-week 0 is Monday, while crontab's 0 (and 7) is Sunday, and ``CronTrigger.from_crontab``
passes the numbers through unchanged (agronholm/apscheduler#286): ``0 9 * * 1-5`` would run Tuesday to Saturday.
Day-of-week numbers are therefore translated to day names.
"""

from __future__ import annotations

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
