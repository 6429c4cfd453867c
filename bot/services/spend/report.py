"""Budgets as people read them: every budget with its spend this period and % used (`budget`, `usage`,
`/claude status`, App Home)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.budgets import Period, Scope, ScopeKind
from bot.domain.marks import strong
from bot.domain.mentions import channel_link, group_mention, mention
from bot.domain.pricing import format_usd
from bot.services.access.policies import all_policies
from bot.services.conversation.access import effective_role
from bot.services.spend.counters import budgets_for, spend_of
from bot.services.spend.usage import UsageSummary
from bot.store.models import Budget


@dataclass(frozen=True)
class BudgetLine:
    """One budget as `budget`, `usage`, `/claude status` and App Home show it."""

    scope: str
    label: str  # "org", "@design (pooled)", "<@U1>", "role power (per person)"
    period: Period
    limit: int  # micro-dollars
    spent: int | None  # None for a role's budget (each person has their own)

    @property
    def percent(self) -> int | None:
        if self.spent is None:
            return None
        return 100 if self.limit <= 0 else self.spent * 100 // self.limit

    def text(self) -> str:
        if self.spent is None:
            return f"{self.label}: {format_usd(self.limit)} {self.period.adjective} per person"
        return (f"{self.label}: {format_usd(self.spent)} of {format_usd(self.limit)} {self.period.adjective} "
                f"({self.percent}%)")


def _limits(budget: Budget) -> list[tuple[Period, int]]:
    return [(p, v) for p, v in ((Period.DAY, budget.daily_micros), (Period.MONTH, budget.monthly_micros))
            if v is not None]


def _label(budget: Budget) -> str:
    scope = Scope.parse(budget.scope)
    if scope.kind is ScopeKind.ORG:
        return "org (pooled)"
    if scope.kind is ScopeKind.GROUP:
        return f"@{budget.name} (pooled)" if budget.name else f"{group_mention(scope.id)} (pooled)"
    if scope.kind is ScopeKind.CHANNEL:
        return f"{channel_link(scope.id)} (pooled)"
    return f"{mention(scope.id)} (own budget)"


async def budget_lines(session: AsyncSession, settings: Settings, now: datetime) -> list[BudgetLine]:
    """Every budget: the org's, each group's, each person's override, each role's per-person fields."""
    tz = settings.budget_zone
    lines: list[BudgetLine] = []
    budgets = list(await session.scalars(select(Budget)))
    order = {ScopeKind.ORG: 0, ScopeKind.GROUP: 1, ScopeKind.CHANNEL: 2, ScopeKind.USER: 3}
    for budget in sorted(budgets, key=lambda b: (order[Scope.parse(b.scope).kind], b.name or b.scope)):
        spend = await spend_of(session, budget.scope, now, tz)
        for period, limit in _limits(budget):
            lines.append(BudgetLine(budget.scope, _label(budget), period, limit, spend[period].micros))
    for role, policy in (await all_policies(session)).items():
        for period, per_person in ((Period.DAY, policy.daily_usd_micros), (Period.MONTH, policy.monthly_usd_micros)):
            if per_person is not None:
                lines.append(BudgetLine(Scope.role(role).key, f"role {strong(role)}", period, per_person, None))
    return lines


async def budgets_of_person(session: AsyncSession, settings: Settings, user_id: str, now: datetime
                            ) -> list[BudgetLine]:
    """The USD budgets that apply to one person, with what is spent in each (for `/claude status` and `usage`)."""
    tz = settings.budget_zone
    policy_role = await effective_role(session, user_id, settings.default_role, now)
    policies = await all_policies(session)
    policy = policies[policy_role.role]
    person = Scope.user(user_id).key
    rows = await budgets_for(session, user_id)
    override = next((b for b in rows if b.scope == person), None)
    lines: list[BudgetLine] = []
    own = await spend_of(session, person, now, tz)
    for period, role_limit, own_limit in (
            (Period.DAY, policy.daily_usd_micros, override.daily_micros if override else None),
            (Period.MONTH, policy.monthly_usd_micros, override.monthly_micros if override else None)):
        limit = own_limit if own_limit is not None else role_limit
        if limit is not None:
            lines.append(BudgetLine(person, "you", period, limit, own[period].micros))
    for pool in rows:
        if pool.scope == person:
            continue
        spend = await spend_of(session, pool.scope, now, tz)
        for period, limit in _limits(pool):
            lines.append(BudgetLine(pool.scope, _label(pool), period, limit, spend[period].micros))
    return lines


def cache_line(summary: UsageSummary) -> str:
    saved = summary.cache_saving_micros
    net = f"saved {format_usd(saved)}" if saved >= 0 else f"cost {format_usd(-saved)} more (writes not read again)"
    return (f"Prompt caching: {summary.cache_read_tokens:,} tokens read from the cache · "
            f"{summary.cache_write_tokens:,} written · {net} net of the dearer writes")
