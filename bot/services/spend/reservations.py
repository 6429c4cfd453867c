"""What every budget leaves a request room for, and the reservation of its worst case at admission.

The gate reads the room (with the pools' locks at the admission, without them at the pre-check) and, once nothing
else may refuse, reserves the request's worst case on every counter that applies; a finish later replaces the
reservation by the real cost (bot/services/spend/counters.py), never above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.domain.budgets import (
    MIN_GRANT_TOKENS,
    Limit,
    Scope,
    fit_tokens,
    period_end,
    period_start,
    reservation_micros,
    resets_in,
)
from bot.domain.decisions import Refusal, RefusalReason
from bot.domain.marks import code
from bot.domain.policy import RolePolicy, granted_max_tokens
from bot.domain.pricing import Price, PriceTable, most_expensive, price_of
from bot.services.spend.counters import (
    CounterKey,
    add_to_counters,
    budgets_for,
    counter_keys,
    limits_for,
    lock_scopes,
    read_counters,
)
from bot.store.db import Conn


@dataclass(frozen=True)
class Reservation:
    max_tokens: int
    micros: int
    charged_to: tuple[str, ...]
    limited_by: str  # what set max_tokens: the role's limit, or the budget with the least room
    alert_due: bool  # a USD budget is at its alert level with this reservation counted (checked at the end)


@dataclass(frozen=True)
class BudgetRoom:
    """What every budget of a request leaves room for, as read (before anything is reserved)."""

    granted: int  # output tokens
    limited_by: str
    charged: tuple[str, ...]  # the scopes whose counters the reservation goes to
    keys: list[CounterKey]  # those counters
    price: Price
    usd_spent: tuple[tuple[Limit, int], ...]  # each USD budget and what it has spent


async def budget_room(conn: Conn, *, user_id: str, policy: RolePolicy, model: str, input_estimate: int,
                      now: datetime, zone: ZoneInfo, prices: PriceTable, lock: bool,
                      channel_id: str | None = None) -> BudgetRoom | Refusal:
    """Every budget that applies, in order (daily tokens, then USD: the person's, their groups', the channel's
    whose rules the request follows, the org's): the output tokens that fit all of them with ``input_estimate``,
    or the first that refuses. ``lock``: the pools' locks are taken before their counters are read (the
    admission)."""
    person = Scope.user(user_id).key
    budgets = await budgets_for(conn, user_id, channel_id)
    limits = limits_for(user_id, policy, budgets)
    pools = [b for b in budgets if b.scope != person]
    charged = tuple(sorted({person, *(pool.scope for pool in pools)}))
    if lock:
        await lock_scopes(conn, (pool.scope for pool in pools))
    price = price_of(model, prices, now.date())
    if price is None:
        if any(not limit.tokens for limit in limits):
            return Refusal(RefusalReason.MODEL_NOT_PRICED,
                           f"{code(model)} has no price, and a USD budget applies to you.",
                           "Ask an admin to add its price to MODEL_PRICES, or choose another model.")
        price = most_expensive(prices)
    keys = counter_keys(charged, now, zone)
    counters = await read_counters(conn, keys)
    role_grant = granted_max_tokens(policy, None)
    granted, limited_by = role_grant.tokens, role_grant.limited_by
    floor = min(MIN_GRANT_TOKENS, granted)
    usd_spent: list[tuple[Limit, int]] = []
    for limit in limits:
        starts = period_start(now, limit.period, zone)
        micros, tokens = counters[(limit.scope, limit.period.value, starts)]
        spent = tokens if limit.tokens else micros
        if not limit.tokens:
            usd_spent.append((limit, spent))
        fit = fit_tokens(limit, spent, input_estimate, price)
        if fit is not None and fit < floor:
            return budget_refusal(limit, spent, now, starts, zone)
        if fit is not None and fit < granted:
            granted, limited_by = fit, f"the {fit:,} tokens that {limit.label} leaves room for"
    return BudgetRoom(granted, limited_by, charged, keys, price, tuple(usd_spent))


async def reserve(conn: Conn, room: BudgetRoom, input_estimate: int, *, alert_percent: int) -> Reservation:
    """Add the request's worst case (``input_estimate`` and the granted output) to every budget's counters."""
    micros = reservation_micros(room.price, input_estimate, room.granted)
    await add_to_counters(conn, room.keys, micros, input_estimate + room.granted)
    # Counters rise only here, at admissions; a finish replaces a reservation by a cost never above it. So an
    # answer whose admission left every USD budget below the first alert level cannot cross one when it ends
    # (an admission that does is checked at its own end): most answers skip the alerts' transaction.
    # ``alert_percent`` is the lower of the two alert levels (it is below 100).
    alert_due = any((spent + micros) * 100 >= alert_percent * limit.limit for limit, spent in room.usd_spent)
    return Reservation(room.granted, micros, room.charged, room.limited_by, alert_due)


def budget_refusal(limit: Limit, spent: int, now: datetime, starts: date, zone: ZoneInfo) -> Refusal:
    """The refusal of a request that does not fit ``limit``, saying when it resets."""
    left = int((period_end(starts, limit.period, zone) - now).total_seconds())
    what = "tokens" if limit.tokens else "dollars"
    return Refusal(RefusalReason.BUDGET_EXHAUSTED,
                   f"This request does not fit {limit.label}: {limit.describe(spent)} used "
                   f"({what} of requests still running included).",
                   f"It resets at {resets_in(now, starts, limit.period, zone)}.",
                   retry_after_seconds=max(1, left), budget=(limit.scope, limit.period.value))
