"""Rules of API keys that need no I/O: statuses, names, rotate-by dates, labels for imported keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

from bot.domain.marks import code
from bot.domain.words import counted


class KeyStatus(StrEnum):
    ACTIVE = "active"  # used for requests of its workspace
    FAILING = "failing"  # Anthropic answered 401/403; used only while no active key exists in the workspace
    REVOKED = "revoked"  # stopped by an admin: never used again
    INACTIVE = "inactive"  # Anthropic statuses, recorded by `keys sync`
    ARCHIVED = "archived"
    EXPIRED = "expired"


USABLE = (KeyStatus.ACTIVE, KeyStatus.FAILING)  # keys that may serve requests, and are reminded about
RETIRED_AT_ANTHROPIC = (KeyStatus.INACTIVE, KeyStatus.ARCHIVED, KeyStatus.EXPIRED)

# The grammar of `keys add` / `keys revoke` (bot/domain/commands.py reads these; nothing else validates them)
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_ROTATE_DAYS = 3650

# What a workspace API key looks like (`sk-ant-api03-…`). A variable holding anything else (a Slack token, a
# database URL, an Admin API key, nothing) is never registered and never sent to Anthropic.
_API_KEY = re.compile(r"sk-ant-api[0-9]{2}-[A-Za-z0-9_-]{8,256}")
NOT_AN_API_KEY = (f"That variable does not hold an Anthropic API key ({code('sk-ant-api…')}) in this process. Put a "
                  "workspace API key from console.anthropic.com in it on every process, restart, then register it "
                  "again.")


def is_api_key(value: str | None) -> bool:
    """Whether ``value`` is shaped like a workspace API key (never an Admin API key, a Slack token or a URL)."""
    return value is not None and _API_KEY.fullmatch(value) is not None


@dataclass(frozen=True)
class Rotation:
    """Where a key stands against its rotate-by date (``created_at + rotate_days``), in calendar days."""

    rotate_by: date
    age_days: int
    days_left: int  # negative: overdue

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    def due_within(self, days: int) -> bool:
        return self.days_left <= days

    @property
    def phrase(self) -> str:
        if self.days_left < 0:
            late = -self.days_left
            return f"overdue by {counted(late, 'day')}"
        if self.days_left == 0:
            return "due today"
        return f"due in {counted(self.days_left, 'day')}"


def rotation_of(created_at: datetime, rotate_days: int, now: datetime, zone: tzinfo) -> Rotation:
    """Dates are calendar dates in ``zone`` (REMINDER_TZ), the way the reminder channel reads them."""
    today = now.astimezone(zone).date()
    created = created_at.astimezone(zone).date()
    rotate_by = (created_at + timedelta(days=rotate_days)).astimezone(zone).date()
    return Rotation(rotate_by=rotate_by, age_days=(today - created).days, days_left=(rotate_by - today).days)


def label_for_imported_key(name: str, key_id: str, taken: set[str]) -> str:
    """A label for an organisation key found by `keys sync`: its name made typable, unique among ``taken``."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:48] or "anthropic"
    if not base[0].isalnum():
        base = "k" + base
    if base not in taken:
        return base
    suffix = re.sub(r"[^A-Za-z0-9]", "", key_id)[-6:] or "key"
    candidate = f"{base}-{suffix}"
    number = 2
    while candidate in taken:
        candidate = f"{base}-{suffix}-{number}"
        number += 1
    return candidate
