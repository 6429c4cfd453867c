"""Time-bound grants: the durations an admin may give (`for=<n>d|<n>h`, 1 hour to 365 days), pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.domain.marks import code
from bot.domain.roles import Role

SHORTEST = timedelta(hours=1)
LONGEST = timedelta(days=365)
DURATION_HELP = f"use <n>d or <n>h, from 1h to 365d (e.g. {code('for=7d')}, {code('for=12h')})"
_DURATION = re.compile(r"(?P<n>[0-9]{1,7})(?P<unit>[dh])")  # ASCII digits: `²` or `٣` are no number


class DurationError(ValueError):
    """A duration that is not `<n>d`/`<n>h` within 1 h..365 d; the message is one line."""


def parse_duration(text: str) -> timedelta:
    """``"7d"`` → 7 days, ``"12h"`` → 12 hours; anything else, or outside 1 h..365 d, raises DurationError."""
    shown = text.strip()[:20].replace("`", "'")
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise DurationError(f"{code(shown)} is not a duration: {DURATION_HELP}.")
    n = int(match.group("n"))
    duration = timedelta(days=n) if match.group("unit") == "d" else timedelta(hours=n)
    if not SHORTEST <= duration <= LONGEST:
        raise DurationError(f"{code(shown)} is out of range: {DURATION_HELP}.")
    return duration


def describe_duration(duration: timedelta) -> str:
    """``7 days``, ``1 day``, ``12 hours``."""
    hours = int(duration.total_seconds() // 3600)
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day" + ("" if days == 1 else "s")
    return f"{hours} hour" + ("" if hours == 1 else "s")


def may_be_time_bound(role: Role) -> bool:
    """Owners are permanent: an owner who vanishes at midnight could leave the install without one."""
    return role is not Role.OWNER


def until_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
