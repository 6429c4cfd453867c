"""USD and token budgets (docs/spend.md): scopes, periods in BUDGET_TZ, and how many tokens fit the room left.

Pure: no I/O. The gate reads the limits and the spend of every budget that applies to a request, asks
:func:`fit_tokens` how many output tokens each leaves room for, and reserves the worst case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.domain.days import local_day, midnight
from bot.domain.marks import code
from bot.domain.pricing import MICROS_PER_USD, Price, format_usd

MIN_GRANT_TOKENS = 256  # below this a request is refused rather than answered with a stub


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"

    @property
    def adjective(self) -> str:
        return "daily" if self is Period.DAY else "monthly"


class ScopeKind(StrEnum):
    ORG = "org"
    GROUP = "group"  # a Slack user group's pooled budget (its ID)
    CHANNEL = "channel"  # a channel's pooled budget (its ID): every answer the channel's rules applied to
    USER = "user"  # a person's own budget (their Slack user ID)
    ROLE = "role"  # a role's per-person budget (shown, never stored as a budget row)

    @property
    def prefix(self) -> str:
        """What every stored key of this kind starts with (``group:``), for matching keys in SQL."""
        return f"{self.value}:"


@dataclass(frozen=True)
class Scope:
    """What a budget (and its spend counters) belongs to. ``key`` is the string stored in the database
    (``org``, ``group:S123``, ``user:U123``, ``role:power``); :meth:`parse` reads one back."""

    kind: ScopeKind
    id: str = ""  # empty for the org

    @classmethod
    def org(cls) -> Scope:
        return cls(ScopeKind.ORG)

    @classmethod
    def group(cls, group_id: str) -> Scope:
        return cls(ScopeKind.GROUP, group_id)

    @classmethod
    def channel(cls, channel_id: str) -> Scope:
        return cls(ScopeKind.CHANNEL, channel_id)

    @classmethod
    def user(cls, user_id: str) -> Scope:
        return cls(ScopeKind.USER, user_id)

    @classmethod
    def role(cls, role: str) -> Scope:
        return cls(ScopeKind.ROLE, role)

    @classmethod
    def parse(cls, key: str) -> Scope:
        """The scope a stored key names; ValueError for a key no scope has."""
        if key == ScopeKind.ORG.value:
            return cls.org()
        kind, _, ident = key.partition(":")
        if not ident or kind == ScopeKind.ORG.value or kind not in {k.value for k in ScopeKind}:
            raise ValueError(f"not a budget scope: {key!r}")
        return cls(ScopeKind(kind), ident)

    @property
    def key(self) -> str:
        return self.kind.value if self.kind is ScopeKind.ORG else f"{self.kind.prefix}{self.id}"


ORG = Scope.org().key


def period_start(now: datetime, period: Period, tz: ZoneInfo) -> date:
    """The first day of the period ``now`` falls in, on the calendar of ``tz``."""
    local = local_day(now, tz)
    return local if period is Period.DAY else local.replace(day=1)


def period_end(starts: date, period: Period, tz: ZoneInfo) -> datetime:
    """When the period that began on ``starts`` ends (midnight in ``tz``), aware."""
    if period is Period.DAY:
        following = starts + timedelta(days=1)
    else:
        following = (starts.replace(day=28) + timedelta(days=4)).replace(day=1)
    return midnight(following, tz)


def resets_in(now: datetime, starts: date, period: Period, tz: ZoneInfo) -> str:
    """``00:00 UTC, in 3 h 12 min`` / ``1 Dec 00:00 Europe/Berlin, in 4 d 2 h``."""
    end = period_end(starts, period, tz)
    left = max(0, int((end - now).total_seconds()) + 59) // 60
    days, hours, minutes = left // 1440, left % 1440 // 60, left % 60
    span = f"{days} d {hours} h" if days else f"{hours} h {minutes} min"
    when = end.strftime("%H:%M") if period is Period.DAY else end.strftime("%-d %b %H:%M")
    return f"{when} {tz.key}, in {span}"


@dataclass(frozen=True)
class Limit:
    """One budget that applies to a request."""

    scope: str  # user:U… / group:S… / org
    period: Period
    limit: int  # micro-dollars, or tokens when ``tokens`` is True
    label: str  # "your daily budget", "the @design group's monthly budget", ...
    source: str  # role / override / group / org / tokens
    tokens: bool = False

    def describe(self, spent: int) -> str:
        if self.tokens:
            return f"{spent:,} of {self.limit:,} tokens"
        return f"{format_usd(spent)} of {format_usd(self.limit)}"


def fit_tokens(limit: Limit, spent: int, input_estimate: int, price: Price | None) -> int | None:
    """The most output tokens a request with ``input_estimate`` input tokens may have under ``limit``.

    None when the limit does not bound output tokens (a free model). Negative when even the input does not fit.
    """
    room = limit.limit - spent
    if limit.tokens:
        return room - input_estimate
    assert price is not None
    rates = price.bound(input_estimate)  # the estimate bounds the prompt: past a tier's threshold, the tier's too
    input_part = input_estimate * rates.dearest_input
    if rates.output == 0:
        return None if room * MICROS_PER_USD >= input_part else -1
    # reservation_micros(E, M) = ceil((E·in + M·out) / 10⁶) ≤ room  ⇔  E·in + M·out ≤ room · 10⁶
    return (room * MICROS_PER_USD - input_part) // rates.output


def reservation_micros(price: Price, input_estimate: int, max_tokens: int) -> int:
    """The worst case of a request: every prompt token at the dearest rate it can be billed at (written to the
    prompt cache: the system prompt and the history carry ``cache_control``), at the long-prompt tier when the
    estimate (an upper bound) passes its threshold, and every output token used. Its real cost is never above
    this, so a budget's counter never rises when an answer ends."""
    rates = price.bound(input_estimate)
    return -(-(input_estimate * rates.dearest_input + max_tokens * rates.output) // MICROS_PER_USD)


MAX_BUDGET_USD = 10_000_000
_AMOUNT = re.compile(r"^\$?(?P<whole>[0-9]{1,8})(?:\.(?P<fraction>[0-9]{1,6}))?$", re.ASCII)
NONE_WORDS = ("none", "off", "unlimited", "-")


class AmountError(ValueError):
    """Not a USD amount; the message is one line."""


def parse_usd(text: str) -> int | None:
    """``5``, ``$5``, ``12.50`` → micro-dollars; ``none`` → None. Anything else (negative, NaN, ``1e999``, a bare
    ``$``, digits of other scripts, more than $10,000,000) raises AmountError."""
    value = text.strip()
    if value.lower() in NONE_WORDS:
        return None
    match = _AMOUNT.match(value)
    if not match or int(match.group("whole")) > MAX_BUDGET_USD:
        shown = value[:40] or "(nothing)"
        raise AmountError(f"{code(shown)} is not an amount in US dollars: use a number such as {code('5')} or "
                          f"{code('$12.50')} (at most ${MAX_BUDGET_USD:,}), or {code('none')}.")
    fraction = (match.group("fraction") or "").ljust(6, "0")
    return int(match.group("whole")) * 1_000_000 + int(fraction)
