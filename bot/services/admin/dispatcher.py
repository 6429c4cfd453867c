"""`/claude-admin`: the one dispatcher of every subcommand, with the rights of PRODUCT §1 enforced here (not in the
listener).

Each handler returns an Answer (a Reply, or the report of its service, rendered by bot/slack/answers.py). Bad input
never reaches a handler (the grammar refuses it); a handler raises a GateError for what the caller can fix, which
``run`` answers as one line (a Denied is audited as `denied` first); every change is audited in the same
transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.commands import ADMIN, GroupRef, ParsedCommand, subcommands_of
from bot.domain.days import day_start
from bot.domain.errors import Denied, GateError
from bot.domain.grants import may_be_time_bound, until_text
from bot.domain.mentions import group_mention, mention
from bot.domain.pricing import format_usd
from bot.domain.replies import Answer, Reply
from bot.domain.requests import Requester
from bot.domain.roles import Right, Role, has_right, may_manage_role
from bot.services.access.groups import find_mapping, list_mappings, map_group, unmap_group
from bot.services.access.policies import (
    USD_FIELDS,
    all_policies,
    describe_policy,
    load_policy,
    parse_policy_value,
    update_policy,
)
from bot.services.access.role_changes import give_role
from bot.services.access.roles import list_grants, list_timed_grants, revoke_role
from bot.services.base import Service
from bot.services.channels.channel_settings import ChannelService
from bot.services.conversation.access import EffectiveRole, access_snapshot, effective_role
from bot.services.data.audit import add_audit, recent_audit
from bot.services.data.erasure import forget_person
from bot.services.data.export import audit_jsonl
from bot.services.keys.choice import active_key
from bot.services.keys.commands import KeyAdministration
from bot.services.ports import Workspace
from bot.services.spend.chart import UsageChart
from bot.services.spend.commands import BudgetService
from bot.services.spend.counters import tokens_today
from bot.services.spend.report import BudgetLine, budget_lines, budgets_of_person, cache_line
from bot.services.spend.usage import UsageSummary, usage_summary
from bot.store.clock import Clock
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

MAX_LIST_LINES = 60
DEFAULT_USAGE_DAYS = 7
DEFAULT_AUDIT_ROWS = 20
MAX_AUDIT_ROWS = 100
DEFAULT_EXPORT_DAYS = 30
MAX_EXPORT_DAYS = 3650

Handler = Callable[["Caller", ParsedCommand], Awaitable[Answer]]


@dataclass(frozen=True)
class Caller:
    requester: Requester
    role: EffectiveRole

    @property
    def user_id(self) -> str:
        return self.requester.user_id


def usage_lines(summary: UsageSummary) -> list[str]:
    lines = [
        f"*{summary.requests:,}* requests · *{summary.refused:,}* refused · *{summary.errors:,}* errors",
        f"Tokens: {summary.input_tokens:,} in · {summary.output_tokens:,} out · "
        f"estimated cost *{format_usd(summary.cost_micros)}*",
    ]
    if summary.cache_read_tokens or summary.cache_write_tokens:
        lines.append(cache_line(summary))
    if summary.refusals:
        reasons = ", ".join(f"{reason.replace('_', ' ')} {count}" for reason, count in
                            sorted(summary.refusals.items(), key=lambda item: -item[1]))
        lines.append(f"Refusals: {reasons}")
    if summary.thumbs_up or summary.thumbs_down:
        lines.append(f"Feedback: :+1: {summary.thumbs_up} · :-1: {summary.thumbs_down}")
    if summary.top_users:
        lines.append("Top users: " + ", ".join(f"{mention(user)} {count} req {format_usd(round(cost * 1_000_000))}"
                                               for user, count, cost in summary.top_users))
    return lines


def truncated(lines: list[str], limit: int = MAX_LIST_LINES) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"…and {len(lines) - limit} more"]


class AdminService(Service):
    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
                 workspace: Workspace) -> None:
        super().__init__(sessions=sessions, settings=settings, clock=clock, workspace=workspace)
        self.channels = ChannelService(sessions=sessions, settings=settings, clock=clock, workspace=workspace)
        self.handlers: dict[str, Handler] = {
            "help": self.help,
            "grant": self.grant,
            "revoke": self.revoke,
            "whois": self.whois,
            "users": self.users,
            "groups": self.groups,
            "groups map": self.groups_map,
            "groups unmap": self.groups_unmap,
            "policy": self.policy,
            "policy set": self.policy_set,
            "usage": self.usage,
            "audit": self.audit,
            "audit export": self.audit_export,
            "forget": self.forget,
            **KeyAdministration(sessions=sessions, settings=settings, clock=clock, workspace=workspace).handlers(),
            "channels": self.channels.list_channels,
            "channel": self.channels.channel,
            **BudgetService(sessions=sessions, settings=settings, clock=clock, workspace=workspace).handlers(),
            **UsageChart(sessions=sessions, settings=settings, clock=clock, workspace=workspace).handlers(),
        }

    async def caller(self, requester: Requester) -> Caller:
        async with self.reads() as session:
            role = await effective_role(session, requester.user_id, self.settings.default_role, self.clock())
        return Caller(requester, role)

    async def run(self, caller: Caller, command: ParsedCommand) -> Answer:
        right = command.subcommand.right
        if right is not None and not self.trusted(caller, right):
            return await self.deny(caller, command.name, None, f"`{command.name}` needs a role with "
                                   f"{right.value.replace('_', ' ')} rights; yours is *{caller.role.role}*.")
        handler = self.handlers.get(command.name)
        if handler is None:
            return Reply.error(f"`{command.name}` is not available in this installation.")
        try:
            return await handler(caller, command)
        except Denied as exc:
            return await self.deny(caller, command.name, command["user"], exc.message)
        except GateError as exc:
            # a subcommand that takes arguments shows its usage with the error: the fix is in what was typed
            usage = exc.usage or (command.subcommand.usage if command.subcommand.params else None)
            return Reply.error(exc.message, usage)

    def trusted(self, caller: Caller, right: Right) -> bool:
        """Admin rights need a known, internal, non-guest, human Slack account (a bot given a grant has none)."""
        asker = caller.requester
        return (has_right(caller.role.role, right) and asker.known and not asker.is_external and not asker.is_guest
                and not asker.is_bot)

    async def deny(self, caller: Caller, action: str, target: str | None, message: str) -> Reply:
        async with self.sessions.begin() as session:
            add_audit(session, at=self.clock(), actor=caller.user_id, action="denied", target=target,
                      command=action, role=caller.role.role.value, reason=message)
        return Reply.denied(message)

    # -- help -------------------------------------------------------------------------------------------
    async def help(self, caller: Caller, _command: ParsedCommand) -> Reply:
        lines = [f"{sub.usage} — {sub.summary}" for sub in subcommands_of(ADMIN)
                 if sub.right is None or self.trusted(caller, sub.right)]
        footer = None if len(lines) > 1 else "Ask an admin or owner for more rights."
        return Reply(f"Claude Gate admin commands for *{caller.role.role}*", lines=lines, footer=footer)

    # -- roles ------------------------------------------------------------------------------------------
    async def grant(self, caller: Caller, command: ParsedCommand) -> Reply:
        target, role, duration = command["user"], command["role"], command["for"]
        if duration is not None and not may_be_time_bound(role):
            return Reply.error("A grant of *owner* cannot be time-bound: owners are permanent.",
                               command.subcommand.usage)
        profile = await self.workspace.profile(target)
        given = await give_role(self.sessions, self.clock, self.settings, actor_id=caller.user_id,
                                actor_role=caller.role.role, target_id=target, role=role, duration=duration,
                                team_id=profile.team_id)
        await self.workspace.send_dm(target, given.dm_text(caller.user_id))
        warning = [] if profile.known else [":warning: Slack does not know this user; the grant is stored anyway."]
        return Reply(given.title, lines=[*given.detail_lines, *warning])

    async def revoke(self, caller: Caller, command: ParsedCommand) -> Reply:
        target = command["user"]
        async with self.sessions.begin() as session:
            old = await revoke_role(session, self.clock, actor_id=caller.user_id, actor_role=caller.role.role,
                                    target_id=target)
            now_role = await effective_role(session, target, self.settings.default_role, self.clock())
        if old is None:
            return Reply.error(f"{mention(target)} has no explicit role to revoke (their role *{now_role.role}* "
                               f"comes from {now_role.source_text}).")
        await self.workspace.send_dm(target, f"{mention(caller.user_id)} removed your Claude Gate role *{old}*. "
                                     f"Your role is now *{now_role.role}* (from {now_role.source_text}).")
        return Reply(f":white_check_mark: {mention(target)} no longer has the role *{old}*.",
                     lines=[f"Their role is now *{now_role.role}*, from {now_role.source_text}."])

    async def whois(self, caller: Caller, command: ParsedCommand) -> Reply:
        target = command["user"]
        profile = await self.workspace.profile(target)
        now = self.clock()
        async with self.reads() as session:
            snapshot = await access_snapshot(session, target, self.settings.default_role, now)
            role, policy = snapshot.role, snapshot.policy
            requests = await session.scalar(select(func.count()).where(
                RequestRecord.slack_user_id == target, RequestRecord.admitted.is_(True),
                RequestRecord.created_at >= day_start(now, self.settings.budget_zone))) or 0
            tokens = await tokens_today(session, target, now, self.settings.budget_zone)
            after = (await effective_role(session, target, self.settings.default_role, role.expires_at)
                     if role.expires_at is not None else None)
        flags = [name for name, on in (("guest", profile.is_guest), ("Slack Connect (external)", profile.is_external),
                                        ("unknown to Slack", not profile.known)) if on]
        then = f", then *{after.role}* from {after.source_text}" if after is not None else ""
        fields = [
            ("Role", f"*{role.role}* (from {role.source_text}{then})"),
            ("Limits", describe_policy(policy, self.settings.models.aliases)),
            ("Today", f"{requests} requests · {tokens:,} tokens"),
        ]
        if flags:
            fields.append(("Account", ", ".join(flags)))
        return Reply(mention(target) + (f" ({profile.name})" if profile.name else ""), fields=fields)

    async def users(self, caller: Caller, command: ParsedCommand) -> Reply:
        role: Role | None = command["role"]
        async with self.reads() as session:
            grants = await list_grants(session, role)
            timed = await list_timed_grants(session, self.clock(), role)
        lines = [f"{mention(g.slack_user_id)} · *{g.role}* until {until_text(g.expires_at)} · by "
                 f"{_actor(g.granted_by)} on {g.granted_at:%Y-%m-%d}" for g in timed]
        lines += [f"{mention(g.slack_user_id)} · *{g.role}* · by {_actor(g.granted_by)} on {g.granted_at:%Y-%m-%d}"
                  for g in grants]
        count = len({g.slack_user_id for g in grants} | {g.slack_user_id for g in timed})
        title = f"{count} user(s) with an explicit role" + (f" *{role}*" if role else "")
        footer = "A time-bound role sits above the person's permanent one, which applies again when it ends." \
            if timed else None
        return Reply(title, lines=truncated(lines) or ["Nobody yet."], footer=footer)

    # -- groups -----------------------------------------------------------------------------------------
    async def groups(self, caller: Caller, _command: ParsedCommand) -> Reply:
        async with self.reads() as session:
            mappings = await list_mappings(session)
        lines = [f"{group_mention(m.usergroup_id)} (@{m.handle or m.usergroup_id}) → *{m.role}* · {count} member(s)"
                 for m, count in mappings]
        return Reply(f"{len(mappings)} user group(s) mapped to roles",
                     lines=lines or ["None yet: `/claude-admin groups map @group <role>`."])

    async def groups_map(self, caller: Caller, command: ParsedCommand) -> Reply:
        ref: GroupRef = command["group"]
        role: Role = command["role"]
        if not may_manage_role(caller.role.role, role):
            return await self.deny(caller, "groups map", str(ref), f"Only an owner can map a group to *{role}*.")
        group_id, handle, members = await self.workspace.user_group(ref)
        async with self.sessions.begin() as session:
            existing = await find_mapping(session, group_id=group_id, handle=None)
            if existing is not None and not may_manage_role(caller.role.role, Role(existing.role)):
                denied_role = existing.role
            else:
                denied_role = None
                await map_group(session, self.clock, actor_id=caller.user_id, group_id=group_id, handle=handle,
                                role=role, members=members)
        if denied_role:
            return await self.deny(caller, "groups map", group_id, f"Only an owner can change the *{denied_role}* "
                                   "mapping of that group.")
        return Reply(f":white_check_mark: Members of {group_mention(group_id)} now have at least the role *{role}*.",
                     lines=[f"{len(members)} member(s) today; membership follows Slack's changes."])

    async def groups_unmap(self, caller: Caller, command: ParsedCommand) -> Reply:
        ref: GroupRef = command["group"]
        async with self.sessions.begin() as session:
            mapping = await find_mapping(session, group_id=ref.id, handle=ref.handle)
            if mapping is None:
                return Reply.error(f"{ref} is not mapped to a role.")
            role = Role(mapping.role)
            if may_manage_role(caller.role.role, role):
                await unmap_group(session, self.clock, actor_id=caller.user_id, group_id=mapping.usergroup_id)
                return Reply(f":white_check_mark: {group_mention(mapping.usergroup_id)} no longer gives the role "
                             f"*{role}*.")
        return await self.deny(caller, "groups unmap", str(ref), f"Only an owner can unmap a *{role}* group.")

    # -- policy -----------------------------------------------------------------------------------------
    async def policy(self, caller: Caller, command: ParsedCommand) -> Reply:
        role: Role | None = command["role"]
        async with self.reads() as session:
            policies = await all_policies(session)
        shown = [role] if role else list(Role)
        fields = [(f"*{r}*", describe_policy(policies[r], self.settings.models.aliases)) for r in shown]
        aliases = ", ".join(f"{alias} = `{model}`" for alias, model in self.settings.models.aliases.items())
        return Reply("Role policies", fields=fields, footer=f"Models: {aliases}")

    async def policy_set(self, caller: Caller, command: ParsedCommand) -> Reply:
        role: Role = command["role"]
        field, text = command["field"], command["value"]
        if not may_manage_role(caller.role.role, role):
            return await self.deny(caller, "policy set", role.value, f"Only an owner can edit the *{role}* policy.")
        value = parse_policy_value(field, text, self.settings.models)
        async with self.sessions.begin() as session:
            if field == "workspace":
                if await active_key(session, value) is None:  # the rule requests follow
                    return Reply.error(f"No active API key in workspace `{value}`: add one first with "
                                       f"`/claude-admin keys add <label> env:<VAR> workspace={value}`.")
            old, new = await update_policy(session, self.clock, actor_id=caller.user_id, role=role, field=field,
                                           value=value)
            policy = await load_policy(session, role)
        if field in USD_FIELDS:
            old, new = (format_usd(v) if isinstance(v, int) else v for v in (old, new))
        return Reply(f":white_check_mark: *{role}* {field}: {_shown(old)} → {_shown(new)}",
                     lines=[describe_policy(policy, self.settings.models.aliases),
                            "Applies from the next request, in every process."])

    # -- reports ----------------------------------------------------------------------------------------
    async def usage(self, caller: Caller, command: ParsedCommand) -> Reply:
        subject = command["subject"] or "all"
        days = command["days"] or DEFAULT_USAGE_DAYS
        since = self.clock() - timedelta(days=days)
        async with self.reads() as session:
            if isinstance(subject, Role):
                summary = await usage_summary(session, since=since, role=subject.value, prices=self.settings.prices)
                who = f"role *{subject}*"
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
            lines += ["*Budgets this period*", *(f"• {line.text()}" for line in budgets)]
        return Reply(f"Usage of {who}, last {days} day(s)", lines=lines,
                     footer="Costs are estimates from the price table per model ID (MODEL_PRICES).")

    async def audit(self, caller: Caller, command: ParsedCommand) -> Reply:
        count = min(command["n"] or DEFAULT_AUDIT_ROWS, MAX_AUDIT_ROWS)
        async with self.reads() as session:
            entries = await recent_audit(session, count)
        lines = []
        for entry in entries:
            actor = mention(entry.actor) if entry.actor[:1] in ("U", "W") else entry.actor
            target = f" {mention(entry.target)}" if entry.target and entry.target[:1] in ("U", "W") else (
                f" {entry.target}" if entry.target else "")
            detail = ", ".join(f"{k}={v}" for k, v in (entry.detail or {}).items() if v is not None)
            lines.append(f"`{entry.at:%Y-%m-%d %H:%M}` {actor} *{entry.action}*{target}"
                         + (f" ({detail})" if detail else ""))
        return Reply(f"Last {len(entries)} audit entries", lines=lines or ["Nothing yet."])

    async def audit_export(self, caller: Caller, command: ParsedCommand) -> Reply:
        """The audit log of the last ``days`` as a JSON Lines file in the caller's DM with the bot; audited."""
        days = min(command["days"] or DEFAULT_EXPORT_DAYS, MAX_EXPORT_DAYS)
        now = self.clock()
        since = now - timedelta(days=days)
        content, rows = await audit_jsonl(self.reads, since)
        async with self.sessions.begin() as session:  # recorded first: an export that then fails was still tried
            add_audit(session, at=now, actor=caller.user_id, action="audit.export", target=None, days=days,
                      rows=rows)
        filename = f"claude-gate-audit-{now:%Y%m%d-%H%M}-{days}d.jsonl"
        where = await self.workspace.upload_file(caller.user_id, filename=filename, content=content or b"",
                                                 title=f"Claude Gate audit log, last {days} day(s)",
                                                 comment=f"{rows:,} audit entries since {since:%Y-%m-%d %H:%M} UTC, "
                                                         "one JSON object a line.")
        return Reply(f":white_check_mark: {rows:,} audit entries of the last {days} day(s) are in {where}.")

    async def forget(self, caller: Caller, command: ParsedCommand) -> Reply:
        """Erase what was stored of a person's words (PRODUCT §7); owners only for admins and owners. Audited."""
        target = command["user"]
        now = self.clock()
        async with self.sessions.begin() as session:
            role = (await effective_role(session, target, self.settings.default_role, now)).role
            allowed = may_manage_role(caller.role.role, role)
            if allowed:
                erased = await forget_person(session, target)
                add_audit(session, at=now, actor=caller.user_id, action="forget", target=target, **erased.counts)
        if not allowed:
            return await self.deny(caller, "forget", target, f"Only an owner can erase the data of an *{role}*.")
        parts = ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in erased.counts.items())
        return Reply(f":white_check_mark: Erased what Claude Gate stored of {mention(target)}'s words: {parts}.",
                     lines=["Their request counts, tokens, costs and 👍/👎 ratings stay, under the same ID; so do "
                            "their roles and the audit log."])


def _actor(actor: str) -> str:
    return mention(actor) if actor.startswith(("U", "W")) else actor


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return f"{value:,}" if isinstance(value, int) else str(value)
