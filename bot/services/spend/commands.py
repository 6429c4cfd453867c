"""`budget` and `budget set` (PRODUCT §3, §6): every USD budget with its spend, and setting one.

A target is a role (its per-person policy fields daily_usd / monthly_usd), a person (an override of their role's),
a Slack user group (pooled: its members' spend together) or ``org`` (pooled: everyone's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.budgets import ORG, AmountError, Period, group_scope, parse_usd, user_scope
from bot.domain.commands import GroupRef, ParsedCommand
from bot.domain.errors import Denied
from bot.domain.mentions import mention
from bot.domain.pricing import format_usd
from bot.domain.replies import Reply
from bot.domain.roles import Role, may_manage_role
from bot.services.access.policies import USD_FIELDS, update_policy
from bot.services.base import Service
from bot.services.conversation.access import effective_role
from bot.services.data.audit import add_audit
from bot.services.spend.counters import lock_scopes, recount_pool
from bot.services.spend.report import budget_lines
from bot.store.models import Budget, GroupMember, GroupRoleMapping

if TYPE_CHECKING:
    from bot.services.admin.dispatcher import Caller, Handler

class BudgetService(Service):
    """The `budget` rows of `/claude-admin`: handlers of the one admin dispatcher (AdminService), which checks the
    caller's rights first and audits a Denied."""

    def handlers(self) -> dict[str, Handler]:
        return {"budget": self.show, "budget set": self.set}

    async def show(self, caller: Caller, command: ParsedCommand) -> Reply:
        async with self.reads() as session:
            lines = await budget_lines(session, self.settings, self.clock())
        if not lines:
            return Reply("USD budgets", lines=["None set: `/claude-admin budget set org monthly 500`."],
                         footer=f"Periods follow {self.settings.budget_tz}.")
        return Reply("USD budgets", lines=[line.text() for line in lines],
                     footer=f"Spend includes requests still running at their reservation. Periods follow "
                     f"{self.settings.budget_tz}; alerts at {self.settings.budget_alert_percent}% and 100%.")

    async def set(self, caller: Caller, command: ParsedCommand) -> Reply:
        target, period_word, text = command["target"], command["period"], command["amount"]
        usage = command.subcommand.usage
        try:
            amount = parse_usd(text or "")
        except AmountError as exc:
            return Reply.error(str(exc), usage)
        period = Period.DAY if period_word == "daily" else Period.MONTH
        if isinstance(target, Role):
            return await self._set_role(caller, target, period, amount)
        if isinstance(target, GroupRef):
            return await self._set_group(caller, target, period, amount)
        if target == ORG:
            return await self._set_pool(caller, ORG, None, period, amount, members=None)
        return await self._set_person(caller, target, period, amount)

    async def _set_role(self, caller: Caller, role: Role, period: Period, amount: int | None) -> Reply:
        if not may_manage_role(caller.role.role, role):
            raise Denied(f"Only an owner can set the *{role}* budget.")
        field = "daily_usd" if period is Period.DAY else "monthly_usd"
        async with self.sessions.begin() as session:
            old, _ = await update_policy(session, self.clock, actor_id=caller.user_id, role=role, field=field,
                                         value=amount)
        assert field in USD_FIELDS
        return Reply(f":white_check_mark: Role *{role}* {period.adjective} budget per person: "
                     f"{_amount(old)} → {_amount(amount)}", lines=["Applies from the next request, in every process."])

    async def _set_person(self, caller: Caller, user_id: str, period: Period, amount: int | None) -> Reply:
        async with self.sessions() as session:
            target_role = (await effective_role(session, user_id, self.settings.default_role, self.clock())).role
        if not may_manage_role(caller.role.role, target_role):
            raise Denied(f"Only an owner can set the budget of someone whose role is *{target_role}*.")
        return await self._write(caller, user_scope(user_id), None, period, amount, f"{mention(user_id)}'s own",
                                 pooled=False)

    async def _set_group(self, caller: Caller, ref: GroupRef, period: Period, amount: int | None) -> Reply:
        group_id, handle, members = await self.workspace.user_group(ref)  # UserGroupNotFound: the dispatcher says
        return await self._set_pool(caller, group_scope(group_id), handle, period, amount, members=members)

    async def _set_pool(self, caller: Caller, scope: str, name: str | None, period: Period, amount: int | None,
                        *, members: list[str] | None) -> Reply:
        label = "The organisation's" if scope == ORG else f"@{name or scope[6:]}'s pooled"
        return await self._write(caller, scope, name, period, amount, label, pooled=True, members=members)

    async def _write(self, caller: Caller, scope: str, name: str | None, period: Period, amount: int | None,
                     label: str, *, pooled: bool, members: list[str] | None = None) -> Reply:
        now = self.clock()
        column = "daily_micros" if period is Period.DAY else "monthly_micros"
        async with self.sessions.begin() as session:
            await lock_scopes(session, [scope])  # no admission reads a half-started pool
            budget = await session.get(Budget, scope, with_for_update=True)
            old = getattr(budget, column) if budget else None
            if budget is None and amount is not None:
                budget = Budget(scope=scope, name=name, updated_by=caller.user_id, updated_at=now)
                session.add(budget)
                if members is not None:
                    await self._keep_members(session, scope, members)
                await session.flush()
                if pooled:  # a pool's spend was not counted before it had a budget
                    await recount_pool(session, scope, now, self.settings.budget_zone)
            if budget is not None:
                setattr(budget, column, amount)
                budget.updated_by, budget.updated_at = caller.user_id, now
                if name:
                    budget.name = name
                if budget.daily_micros is None and budget.monthly_micros is None:
                    await session.delete(budget)
                    if scope.startswith("group:"):
                        await self._drop_members(session, scope)
            add_audit(session, at=now, actor=caller.user_id, action="budget.set", target=scope,
                      period=period.value, old=old, new=amount)
        lines = ["Applies from the next request, in every process."]
        if pooled and members is not None:
            lines.append(f"{len(members)} member(s) today; membership follows Slack's changes.")
        return Reply(f":white_check_mark: {label} {period.adjective} budget: {_amount(old)} → {_amount(amount)}",
                     lines=lines)

    @staticmethod
    async def _keep_members(session: AsyncSession, scope: str, members: list[str]) -> None:
        group_id = scope.removeprefix("group:")
        if await session.get(GroupRoleMapping, group_id) is None:  # a mapped group's members are kept already
            await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id))
            session.add_all(GroupMember(usergroup_id=group_id, slack_user_id=u) for u in dict.fromkeys(members))

    @staticmethod
    async def _drop_members(session: AsyncSession, scope: str) -> None:
        group_id = scope.removeprefix("group:")
        if await session.get(GroupRoleMapping, group_id) is None:  # a mapped group keeps them for its role
            await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id))


def _amount(value: Any) -> str:
    return "none" if value is None else format_usd(int(value))
