""""Today" in one place: the day a moment falls in, in that moment's own time zone (UTC for the clock's moments).

Daily token budgets, "requests today" (whois, App Home) and when a daily budget resets all use these two.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta


def day_start(moment: datetime) -> datetime:
    """00:00 of the day ``moment`` falls in, in ``moment``'s time zone."""
    return datetime.combine(moment.date(), time(0), tzinfo=moment.tzinfo)


def next_day_start(moment: datetime) -> datetime:
    """00:00 of the day after ``moment``'s: when "today" ends."""
    return datetime.combine(moment.date() + timedelta(days=1), time(0), tzinfo=moment.tzinfo)
