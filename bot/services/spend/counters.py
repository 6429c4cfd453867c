"""Spend per budget scope and period: the counters the gate reserves against and the finish settles (docs/spend.md).

A counter row (scope, period, first day) holds the reservations of requests in flight plus the real cost of
finished ones, in micro-dollars and tokens. The gate adds a request's reservation under the scope's lock; the
finish adds the difference between the real cost and the reservation. Reading a budget's spend is one row.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, Select, Table, and_, bindparam, func, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain.budgets import ORG, Limit, Period, Scope, ScopeKind, period_start
from bot.domain.days import midnight
from bot.domain.marks import strong
from bot.domain.policy import RolePolicy
from bot.store.db import Conn, dialect_of
from bot.store.models import Budget, GroupMember, RequestRecord, SpendCounter

_counters = cast(Table, SpendCounter.__table__)  # the counters' Core table

CounterKey = tuple[str, str, date]  # scope, period, first day


def counter_keys(scopes: Iterable[str], at: datetime, tz: ZoneInfo) -> list[CounterKey]:
    """The day and month counters of each scope for the moment ``at``, in the fixed (sorted) order of updates."""
    starts = {period: period_start(at, period, tz) for period in Period}
    return sorted({(scope, period.value, starts[period]) for scope in scopes for period in Period})


@functools.cache
def _counters_of(count: int) -> Select:  # type: ignore[type-arg]
    """The counters of ``count`` keys, bound as ``s0, p0, d0, s1…``: built once per number of keys (building a
    statement, and rendering an IN list at every execution, cost more than running it)."""
    c = _counters.c
    return select(c.scope, c.period, c.starts, c.micros, c.tokens).where(or_(*(
        and_(c.scope == bindparam(f"s{i}"), c.period == bindparam(f"p{i}"), c.starts == bindparam(f"d{i}"))
        for i in range(count))))


async def read_counters(session: Conn, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]:
    """(micro-dollars, tokens) spent for each key; absent keys are (0, 0)."""
    if not keys:
        return {}
    params: dict[str, object] = {}
    for i, (scope, period, starts) in enumerate(keys):
        params[f"s{i}"], params[f"p{i}"], params[f"d{i}"] = scope, period, starts
    rows = await session.execute(_counters_of(len(keys)), params)
    found = {(scope, period, starts): (int(micros), int(tokens)) for scope, period, starts, micros, tokens in rows}
    return {key: found.get(key, (0, 0)) for key in keys}


def _upsert(dialect: str) -> Executable:
    table = _counters
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(scope=bindparam("scope"), period=bindparam("period"),
                                     starts=bindparam("starts"), micros=bindparam("micros"),
                                     tokens=bindparam("tokens"))
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.period, table.c.starts],
        set_={"micros": table.c.micros + statement.excluded.micros,
              "tokens": table.c.tokens + statement.excluded.tokens})
    return upsert


_UPSERTS = {"postgresql": _upsert("postgresql"), "sqlite": _upsert("sqlite")}
_SET_COUNTER = {
    name: (postgresql.insert if name == "postgresql" else sqlite.insert)(_counters)
    for name in ("postgresql", "sqlite")
}
# PostgreSQL: a transaction-scoped lock on a name (a person's admissions, a budget pool)
ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
ADD_TO_COUNTER = (update(_counters)
                  .where(_counters.c.scope == bindparam("k_scope"),
                         _counters.c.period == bindparam("k_period"),
                         _counters.c.starts == bindparam("k_starts"))
                  .values(micros=_counters.c.micros + bindparam("d_micros"),
                          tokens=_counters.c.tokens + bindparam("d_tokens")))


async def add_to_counters(session: Conn, keys: Sequence[CounterKey], micros: int, tokens: int) -> None:
    """Add a reservation to counters, creating them (keys in sorted order: rows are locked in one order)."""
    if not keys:
        return
    rows = [{"scope": s, "period": p, "starts": d, "micros": micros, "tokens": tokens} for s, p, d in sorted(keys)]
    await session.execute(_UPSERTS[dialect_of(session)], rows)


def settle_rows(charged_to: Sequence[str], admitted_at: datetime, tz: ZoneInfo, micros: int,
                tokens: int) -> list[dict[str, object]]:
    """Parameter rows of ADD_TO_COUNTER that settle one request: its counters get real − reserved."""
    return [{"k_scope": s, "k_period": p, "k_starts": d, "d_micros": micros, "d_tokens": tokens}
            for s, p, d in counter_keys(charged_to, admitted_at, tz)]


def _budgets_of() -> Select:  # type: ignore[type-arg]
    b = Budget.__table__.c
    groups = (select(literal(ScopeKind.GROUP.prefix) + GroupMember.usergroup_id)
              .where(GroupMember.slack_user_id == bindparam("user_id")))
    return (select(b.scope, b.name, b.daily_micros, b.monthly_micros)
            .where(or_(b.scope == bindparam("person"), b.scope == ORG, b.scope == bindparam("channel"),
                       b.scope.in_(groups))).order_by(b.scope))


# built once: the person's scope is ``person``, their user ID ``user_id``, the channel's scope ``channel``
BUDGETS_OF = _budgets_of()


async def budgets_for(session: Conn, user_id: str, channel_id: str | None = None) -> list[Budget]:
    """The person's override, the budgets of the user groups they are in, the budget of the channel whose rules
    the request follows (None: a DM, which no channel budget charges), and the org budget, in scope order."""
    channel = Scope.channel(channel_id).key if channel_id else ""
    rows = await session.execute(BUDGETS_OF, {"person": Scope.user(user_id).key, "user_id": user_id,
                                              "channel": channel})
    return [Budget(scope=scope, name=name, daily_micros=daily, monthly_micros=monthly)
            for scope, name, daily, monthly in rows]


def limits_for(user_id: str, policy: RolePolicy, budgets: Sequence[Budget]) -> list[Limit]:
    """Every budget that applies to a person, in the gate's order (docs/architecture.md): daily tokens, then USD —
    their own (an override of their role's, period by period), their groups' pools, the org's."""
    person = Scope.user(user_id).key
    limits: list[Limit] = []
    if policy.daily_token_budget is not None:
        limits.append(Limit(person, Period.DAY, policy.daily_token_budget, "your daily token budget", "tokens",
                            tokens=True))
    override = next((b for b in budgets if b.scope == person), None)
    for period, role_limit, own in (
            (Period.DAY, policy.daily_usd_micros, override.daily_micros if override else None),
            (Period.MONTH, policy.monthly_usd_micros, override.monthly_micros if override else None)):
        if own is not None:
            limits.append(Limit(person, period, own, f"your {period.adjective} budget", "override"))
        elif role_limit is not None:
            limits.append(Limit(person, period, role_limit,
                                f"your {period.adjective} budget (role {strong(policy.role)})", "role"))
    for pool in budgets:
        if pool.scope == person:
            continue
        scope = Scope.parse(pool.scope)
        name = ("the organisation's" if scope.kind is ScopeKind.ORG
                else f"the #{pool.name or scope.id} channel's" if scope.kind is ScopeKind.CHANNEL
                else f"the @{pool.name or scope.id} group's")
        for period, limit in ((Period.DAY, pool.daily_micros), (Period.MONTH, pool.monthly_micros)):
            if limit is not None:
                limits.append(Limit(pool.scope, period, limit, f"{name} {period.adjective} budget",
                                    scope.kind.value))
    return limits


async def lock_scopes(session: Conn, scopes: Iterable[str]) -> None:
    """PostgreSQL: one advisory lock per pool, taken in sorted order after the person's (SQLite: BEGIN IMMEDIATE
    already serialises every writer)."""
    if dialect_of(session) != "postgresql":
        return
    for scope in sorted(set(scopes)):
        await session.execute(ADVISORY_LOCK, {"key": f"budget:{scope}"})


@dataclass(frozen=True)
class PeriodSpend:
    period: Period
    starts: date
    micros: int
    tokens: int


async def recount_pool(session: Conn, scope: str, now: datetime, tz: ZoneInfo) -> None:
    """Start (or restart) a pool's counters for the current day and month from the records of the period.

    Used when a group or the org gets its first budget: until then its spend was not kept. A group's spend is
    its current members' (admitted records, in-flight ones at their reservation).
    """
    dialect = dialect_of(session)
    table = _counters
    for period in Period:
        starts = period_start(now, period, tz)
        since = midnight(starts, tz)
        query = (select(func.coalesce(func.sum(RequestRecord.cost_micros), 0),
                        func.coalesce(func.sum(RequestRecord.input_tokens + RequestRecord.output_tokens), 0))
                 .where(RequestRecord.admitted.is_(True), RequestRecord.created_at >= since))
        pool = Scope.parse(scope)
        if pool.kind is ScopeKind.GROUP:
            members = select(GroupMember.slack_user_id).where(GroupMember.usergroup_id == pool.id)
            query = query.where(RequestRecord.slack_user_id.in_(members))
        elif pool.kind is ScopeKind.CHANNEL:
            query = query.where(RequestRecord.channel_id == pool.id)
        micros, tokens = (await session.execute(query)).one()
        statement = _SET_COUNTER[dialect].values(scope=scope, period=period.value, starts=starts,
                                                 micros=int(micros), tokens=int(tokens))
        await session.execute(statement.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.period, table.c.starts],
            set_={"micros": statement.excluded.micros, "tokens": statement.excluded.tokens}))


async def spend_of(session: Conn, scope: str, now: datetime, tz: ZoneInfo) -> dict[Period, PeriodSpend]:
    keys = counter_keys([scope], now, tz)
    counters = await read_counters(session, keys)
    return {Period(p): PeriodSpend(Period(p), d, *counters[(s, p, d)]) for s, p, d in keys}


async def tokens_today(session: Conn, user_id: str, now: datetime, tz: ZoneInfo) -> int:
    """The person's tokens today in ``tz``: finished requests at their real count, requests in flight at their
    reservation."""
    return (await spend_of(session, Scope.user(user_id).key, now, tz))[Period.DAY].tokens


__all__ = ["ADD_TO_COUNTER", "ADVISORY_LOCK", "CounterKey", "add_to_counters", "budgets_for", "counter_keys",
           "lock_scopes", "read_counters", "recount_pool", "settle_rows", "spend_of", "tokens_today"]
