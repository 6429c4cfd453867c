""""Today" in one place: days on the budget calendar (``BUDGET_TZ``, docs/spend.md).

Every "start of today" (daily budgets, the daily token budget, "requests today" in whois and the App Home, when a
daily budget resets, the days of the usage chart) is midnight in the zone given, never the UTC midnight of the
clock's moments. Budget periods (bot/domain/budgets.py) use :func:`midnight` for their edges too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo


def midnight(day: date, tz: tzinfo) -> datetime:
    """00:00 of ``day`` on the calendar of ``tz``, aware."""
    return datetime.combine(day, time(0), tzinfo=tz)


def local_day(moment: datetime, tz: tzinfo) -> date:
    """The day ``moment`` falls in on the calendar of ``tz``."""
    return moment.astimezone(tz).date()


def day_start(moment: datetime, tz: tzinfo) -> datetime:
    """00:00 (in ``tz``) of the day ``moment`` falls in there."""
    return midnight(local_day(moment, tz), tz)


def next_day_start(moment: datetime, tz: tzinfo) -> datetime:
    """00:00 (in ``tz``) of the day after ``moment``'s there: when "today" ends."""
    return midnight(local_day(moment, tz) + timedelta(days=1), tz)
