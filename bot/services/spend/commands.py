"""The spend rows of `/claude-admin`: `budget` and `budget set` (every USD budget with its spend, and setting one),
`usage` (requests, tokens, estimated cost, refusals) and `usage chart` (a PNG of daily cost, in the caller's DM).

A budget's target is a role (its per-person policy fields daily_usd / monthly_usd), a person (an override of their
role's), a Slack user group (pooled: its members' spend together) or ``org`` (pooled: everyone's).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.budgets import ORG, AmountError, Period, Scope, ScopeKind, parse_usd
from bot.domain.channels import ChannelRef
from bot.domain.commands import DEFAULT_CHART_DAYS, GroupRef, ParsedCommand
from bot.domain.errors import Denied
from bot.domain.marks import Icon, code, icon, strong
from bot.domain.mentions import channel_link, mention
from bot.domain.pricing import format_usd
from bot.domain.replies import Reply
from bot.domain.roles import Role, may_manage_role
from bot.domain.words import counted
from bot.services.access.policies import USD_FIELDS, update_policy
from bot.services.base import Caller, Handler, Service
from bot.services.conversation.access import effective_role
from bot.services.data.audit import add_audit
from bot.services.ports import ChannelNotFound
from bot.services.spend.chart import daily_cost, period_text, render_png
from bot.services.spend.counters import lock_scopes, recount_pool
from bot.services.spend.reconcile import Reconciler
from bot.services.spend.report import BudgetLine, budget_lines, budgets_of_person, cache_line
from bot.services.spend.usage import UsageSummary, usage_summary
from bot.store.models import Budget, GroupMember, GroupRoleMapping

DEFAULT_USAGE_DAYS = 7


class SpendCommands(Service):
    """Handlers of the one admin dispatcher (bot/services/admin/dispatcher.py), which checks the caller's rights
    first and audits a Denied."""

    def handlers(self) -> dict[str, Handler]:
        return {"budget": self.show, "budget set": self.set, "usage": self.usage, "usage chart": self.chart,
                "usage reconcile": self.reconcile}

    async def reconcile(self, caller: Caller, command: ParsedCommand) -> Reply:
        """Our cost beside Anthropic's cost report for the last complete UTC days (bot/services/spend/reconcile.py)."""
        reconciler = Reconciler(db=self.db, settings=self.settings, clock=self.clock, slack=self.slack)
        return await reconciler.report(command["days"] or 1)

    async def usage(self, caller: Caller, command: ParsedCommand) -> Reply:
        subject = command["subject"] or "all"
        days = command["days"] or DEFAULT_USAGE_DAYS
        since = self.clock() - timedelta(days=days)
        async with self.reads() as session:
            if isinstance(subject, Role):
                summary = await usage_summary(session, since=since, role=subject.value, prices=self.settings.prices)
                who = f"role {strong(subject)}"
            elif subject == "all":
                summary = await usage_summary(session, since=since, prices=self.settings.prices)
                who = "everyone"
            else:
                summary = await usage_summary(session, since=since, user_id=subject, prices=self.settings.prices)
                who = mention(subject)
            if isinstance(subject, Role):
                budgets: list[BudgetLine] = []
            elif subject == "all":
                budgets = await budget_lines(session, self.settings, self.clock())
            else:
                budgets = await budgets_of_person(session, self.settings, subject, self.clock())
        lines = usage_lines(summary)
        if budgets:
            lines += [strong("Budgets this period"), *(f"• {line.text()}" for line in budgets)]
        return Reply(f"Usage of {who}, last {counted(days, 'day')}", lines=lines,
                     footer="Costs are estimates from the price table per model ID (MODEL_PRICES).")

    async def chart(self, caller: Caller, command: ParsedCommand) -> Reply:
        days = command["days"] or DEFAULT_CHART_DAYS
        now = self.clock()
        tz = self.settings.budget_zone
        async with self.sessions() as session:
            chart = await daily_cost(session, now=now, days=days, tz=tz, model_name=self.settings.models.alias_of)
        if chart.total == 0:
            return Reply(f"No spend in the last {counted(days, 'day')}, {period_text(chart)}: "
                         "there is nothing to chart.")
        title = f"Claude Gate: daily cost by role and model, {period_text(chart)}"
        png = await asyncio.to_thread(render_png, chart, title=title)
        filename = f"claude-gate-cost-{chart.days[-1]:%Y%m%d}-{days}d.png"
        comment = f"Daily cost by role and model, {period_text(chart)}: {format_usd(chart.total)} in all (estimated)."
        where = await self.slack.upload_file(caller.user_id, filename=filename, content=png, title=title,
                                                 comment=comment)
        return Reply(f"{icon(Icon.DONE)} The chart of the last {counted(days, 'day')} "
                     f"({format_usd(chart.total)} in all) is in {where}.")

    async def show(self, caller: Caller, command: ParsedCommand) -> Reply:
        async with self.reads() as session:
            lines = await budget_lines(session, self.settings, self.clock())
        if not lines:
            return Reply("USD budgets", lines=[f"None set: {code('/claude-admin budget set org monthly 500')}."],
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
        if isinstance(target, ChannelRef):
            return await self._set_channel(caller, target, period, amount)
        if target == ORG:
            return await self._set_pool(caller, ORG, None, period, amount, members=None)
        return await self._set_person(caller, target, period, amount)

    async def _set_role(self, caller: Caller, role: Role, period: Period, amount: int | None) -> Reply:
        if not may_manage_role(caller.role.role, role):
            raise Denied(f"Only an owner can set the {strong(role)} budget.")
        field = "daily_usd" if period is Period.DAY else "monthly_usd"
        async with self.sessions.begin() as session:
            old, _ = await update_policy(session, self.clock, actor_id=caller.user_id, role=role, field=field,
                                         value=amount)
        assert field in USD_FIELDS
        return Reply(f"{icon(Icon.DONE)} Role {strong(role)} {period.adjective} budget per person: "
                     f"{_amount(old)} → {_amount(amount)}", lines=["Applies from the next request, in every process."])

    async def _set_person(self, caller: Caller, user_id: str, period: Period, amount: int | None) -> Reply:
        async with self.sessions() as session:
            target_role = (await effective_role(session, user_id, self.settings.default_role, self.clock())).role
        if not may_manage_role(caller.role.role, target_role):
            raise Denied(f"Only an owner can set the budget of someone whose role is {strong(target_role)}.")
        return await self._write(caller, Scope.user(user_id).key, None, period, amount, f"{mention(user_id)}'s own",
                                 pooled=False)

    async def _set_group(self, caller: Caller, ref: GroupRef, period: Period, amount: int | None) -> Reply:
        group_id, handle, members = await self.slack.user_group(ref)  # UserGroupNotFound: the dispatcher says
        return await self._set_pool(caller, Scope.group(group_id).key, handle, period, amount, members=members)

    async def _set_channel(self, caller: Caller, ref: ChannelRef, period: Period, amount: int | None) -> Reply:
        """A channel's pool: every answer whose channel rules the gate applied there (a DM charges none)."""
        try:
            name = await self.slack.channel_name(ref.id) or ref.name
        except ChannelNotFound:
            return Reply.error(f"{channel_link(ref.id)} is not a channel the bot can see: invite it there "
                               "first.")
        label = f"{channel_link(ref.id)}'s pooled"
        return await self._write(caller, Scope.channel(ref.id).key, name, period, amount, label, pooled=True)

    async def _set_pool(self, caller: Caller, scope: str, name: str | None, period: Period, amount: int | None,
                        *, members: list[str] | None) -> Reply:
        label = "The organisation's" if scope == ORG else f"@{name or Scope.parse(scope).id}'s pooled"
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
                    if Scope.parse(scope).kind is ScopeKind.GROUP:
                        await self._drop_members(session, scope)
            add_audit(session, at=now, actor=caller.user_id, action="budget.set", target=scope,
                      period=period.value, old=old, new=amount)
        lines = ["Applies from the next request, in every process."]
        if pooled and members is not None:
            lines.append(f"{counted(len(members), 'member')} today; membership follows Slack's changes.")
        return Reply(f"{icon(Icon.DONE)} {label} {period.adjective} budget: {_amount(old)} → {_amount(amount)}",
                     lines=lines)

    @staticmethod
    async def _keep_members(session: AsyncSession, scope: str, members: list[str]) -> None:
        group_id = Scope.parse(scope).id
        if await session.get(GroupRoleMapping, group_id) is None:  # a mapped group's members are kept already
            await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id))
            session.add_all(GroupMember(usergroup_id=group_id, slack_user_id=u) for u in dict.fromkeys(members))

    @staticmethod
    async def _drop_members(session: AsyncSession, scope: str) -> None:
        group_id = Scope.parse(scope).id
        if await session.get(GroupRoleMapping, group_id) is None:  # a mapped group keeps them for its role
            await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id))


def usage_lines(summary: UsageSummary) -> list[str]:
    lines = [
        f"{strong(counted(summary.requests, 'request'))} · {strong(f'{summary.refused:,}')} refused · "
        f"{strong(counted(summary.errors, 'error'))}" + (
            f" · {strong(f'{summary.stopped:,}')} stopped" if summary.stopped else ""),
        f"Tokens: {summary.input_tokens:,} in · {summary.output_tokens:,} out · "
        f"estimated cost {strong(format_usd(summary.cost_micros))}",
    ]
    if summary.cache_read_tokens or summary.cache_write_tokens:
        lines.append(cache_line(summary))
    if summary.refusals:
        reasons = ", ".join(f"{reason.replace('_', ' ')} {count}" for reason, count in
                            sorted(summary.refusals.items(), key=lambda item: -item[1]))
        lines.append(f"Refusals: {reasons}")
    if summary.thumbs_up or summary.thumbs_down:
        lines.append(f"Feedback: {icon(Icon.THUMBS_UP)} {summary.thumbs_up} · "
                     f"{icon(Icon.THUMBS_DOWN)} {summary.thumbs_down}")
    if summary.top_users:
        lines.append("Top users: " + ", ".join(f"{mention(user)} {count} req {format_usd(round(cost * 1_000_000))}"
                                               for user, count, cost in summary.top_users))
    if summary.top_channels:
        lines.append("Spend by channel: " + ", ".join(f"{channel_link(channel)} {count} req {format_usd(cost)}"
                                                      for channel, count, cost in summary.top_channels))
    return lines


def _amount(value: Any) -> str:
    return "none" if value is None else format_usd(int(value))
