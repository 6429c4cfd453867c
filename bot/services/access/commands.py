"""The role, group, policy and access-request rows of `/claude-admin`: grant, revoke, whois, users, groups (map,
unmap), policy (set), requests (approve, deny).

The dispatcher (bot/services/admin/dispatcher.py) checks the caller's rights before any of these run. A refusal
that depends on what is asked (an owner's group, policy or grant) raises a Denied, which the dispatcher audits and
answers; every change is audited in the same transaction as the change.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.config import Settings
from bot.domain.commands import GroupRef, ParsedCommand
from bot.domain.days import day_start
from bot.domain.errors import Denied
from bot.domain.grants import may_be_time_bound, until_text
from bot.domain.marks import Icon, code, icon, strong
from bot.domain.mentions import group_mention, mention
from bot.domain.pricing import format_usd
from bot.domain.replies import Reply, truncated
from bot.domain.requests import Requester
from bot.domain.roles import Role, may_manage_role
from bot.domain.words import counted
from bot.services.access.groups import find_mapping, list_mappings, map_group, unmap_group
from bot.services.access.policies import (
    USD_FIELDS,
    all_policies,
    describe_policy,
    load_policy,
    parse_policy_value,
    update_policy,
)
from bot.services.access.requests import AccessRequests, Decision, DecisionKind
from bot.services.access.role_changes import RoleChanges
from bot.services.access.roles import SHELL_ACTOR, list_grants, list_timed_grants, revoke_role
from bot.services.base import Caller, Handler, Service
from bot.services.conversation.access import access_snapshot, effective_role
from bot.services.keys.choice import active_key
from bot.services.ports import SlackPort
from bot.services.spend.counters import tokens_today
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.models import RequestRecord


class AccessCommands(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort,
                 requests: AccessRequests) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.requests = requests
        self.role_changes = RoleChanges(db=db, settings=settings, clock=clock, slack=slack)

    def handlers(self) -> dict[str, Handler]:
        return {
            "grant": self.grant,
            "revoke": self.revoke,
            "whois": self.whois,
            "users": self.users,
            "groups": self.groups,
            "groups map": self.groups_map,
            "groups unmap": self.groups_unmap,
            "policy": self.policy,
            "policy set": self.policy_set,
            "requests": self.pending_requests,
            "requests approve": self.approve_request,
            "requests deny": self.deny_request,
        }

    # -- roles ------------------------------------------------------------------------------------------
    async def grant(self, caller: Caller, command: ParsedCommand) -> Reply:
        target, role, duration = command["user"], command["role"], command["for"]
        if duration is not None and not may_be_time_bound(role):
            return Reply.error(f"A grant of {strong('owner')} cannot be time-bound: owners are permanent.",
                               command.subcommand.usage)
        profile = await self.slack.profile(target)
        given = await self.role_changes.give_role(actor_id=caller.user_id, actor_role=caller.role.role,
                                                  target_id=target, role=role, duration=duration,
                                                  team_id=profile.team_id)
        await self.slack.send_dm(target, given.dm_text(caller.user_id))
        warning = [] if profile.known else [
            f"{icon(Icon.WARNING)} Slack does not know this user; the grant is stored anyway."]
        return Reply(given.title, lines=[*given.detail_lines, *warning])

    async def revoke(self, caller: Caller, command: ParsedCommand) -> Reply:
        target = command["user"]
        async with self.sessions.begin() as session:
            old = await revoke_role(session, self.clock, actor_id=caller.user_id, actor_role=caller.role.role,
                                    target_id=target)
            now_role = await effective_role(session, target, self.settings.default_role, self.clock())
        if old is None:
            return Reply.error(f"{mention(target)} has no explicit role to revoke (their role {strong(now_role.role)} "
                               f"comes from {now_role.source_text}).")
        await self.slack.send_dm(target, f"{mention(caller.user_id)} removed your Claude Gate role {strong(old)}. "
                                     f"Your role is now {strong(now_role.role)} (from {now_role.source_text}).")
        return Reply(f"{icon(Icon.DONE)} {mention(target)} no longer has the role {strong(old)}.",
                     lines=[f"Their role is now {strong(now_role.role)}, from {now_role.source_text}."])

    async def whois(self, caller: Caller, command: ParsedCommand) -> Reply:
        target = command["user"]
        profile = await self.slack.profile(target)
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
        then = f", then {strong(after.role)} from {after.source_text}" if after is not None else ""
        fields = [
            ("Role", f"{strong(role.role)} (from {role.source_text}{then})"),
            ("Limits", describe_policy(policy, self.settings.models.aliases)),
            ("Today", f"{counted(requests, 'request')} · {counted(tokens, 'token')}"),
        ]
        if flags:
            fields.append(("Account", ", ".join(flags)))
        return Reply(mention(target) + (f" ({profile.name})" if profile.name else ""), fields=fields)

    async def users(self, caller: Caller, command: ParsedCommand) -> Reply:
        role: Role | None = command["role"]
        async with self.reads() as session:
            grants = await list_grants(session, role)
            timed = await list_timed_grants(session, self.clock(), role)
        lines = [f"{mention(g.slack_user_id)} · {strong(g.role)} until {until_text(g.expires_at)} · by "
                 f"{_actor(g.granted_by)} on {g.granted_at:%Y-%m-%d}" for g in timed]
        lines += [f"{mention(g.slack_user_id)} · {strong(g.role)} · by {_actor(g.granted_by)} on "
                  f"{g.granted_at:%Y-%m-%d}" for g in grants]
        count = len({g.slack_user_id for g in grants} | {g.slack_user_id for g in timed})
        title = f"{counted(count, 'user')} with an explicit role" + (f" {strong(role)}" if role else "")
        footer = "A time-bound role sits above the person's permanent one, which applies again when it ends." \
            if timed else None
        return Reply(title, lines=truncated(lines) or ["Nobody yet."], footer=footer)

    # -- groups -----------------------------------------------------------------------------------------
    async def groups(self, caller: Caller, _command: ParsedCommand) -> Reply:
        async with self.reads() as session:
            mappings = await list_mappings(session)
        lines = [f"{group_mention(m.usergroup_id)} (@{m.handle or m.usergroup_id}) → {strong(m.role)} · "
                 f"{counted(count, 'member')}" for m, count in mappings]
        return Reply(f"{counted(len(mappings), 'user group')} mapped to roles",
                     lines=lines or [f"None yet: {code('/claude-admin groups map @group <role>')}."])

    async def groups_map(self, caller: Caller, command: ParsedCommand) -> Reply:
        ref: GroupRef = command["group"]
        role: Role = command["role"]
        if not may_manage_role(caller.role.role, role):
            raise Denied(f"Only an owner can map a group to {strong(role)}.", target=str(ref))
        group_id, handle, members = await self.slack.user_group(ref)
        async with self.sessions.begin() as session:
            existing = await find_mapping(session, group_id=group_id, handle=None)
            if existing is not None and not may_manage_role(caller.role.role, Role(existing.role)):
                denied_role = existing.role
            else:
                denied_role = None
                await map_group(session, self.clock, actor_id=caller.user_id, group_id=group_id, handle=handle,
                                role=role, members=members)
        if denied_role:
            raise Denied(f"Only an owner can change the {strong(denied_role)} mapping of that group.", target=group_id)
        return Reply(f"{icon(Icon.DONE)} Members of {group_mention(group_id)} now have at least the role "
                     f"{strong(role)}.",
                     lines=[f"{counted(len(members), 'member')} today; membership follows Slack's changes."])

    async def groups_unmap(self, caller: Caller, command: ParsedCommand) -> Reply:
        ref: GroupRef = command["group"]
        async with self.sessions.begin() as session:
            mapping = await find_mapping(session, group_id=ref.id, handle=ref.handle)
            if mapping is None:
                return Reply.error(f"{ref} is not mapped to a role.")
            role = Role(mapping.role)
            if may_manage_role(caller.role.role, role):
                await unmap_group(session, self.clock, actor_id=caller.user_id, group_id=mapping.usergroup_id)
                return Reply(f"{icon(Icon.DONE)} {group_mention(mapping.usergroup_id)} no longer gives the role "
                             f"{strong(role)}.")
        raise Denied(f"Only an owner can unmap a {strong(role)} group.", target=str(ref))

    # -- policy -----------------------------------------------------------------------------------------
    async def policy(self, caller: Caller, command: ParsedCommand) -> Reply:
        role: Role | None = command["role"]
        async with self.reads() as session:
            policies = await all_policies(session)
        shown = [role] if role else list(Role)
        fields = [(strong(r), describe_policy(policies[r], self.settings.models.aliases)) for r in shown]
        aliases = ", ".join(f"{alias} = {code(model)}" for alias, model in self.settings.models.aliases.items())
        return Reply("Role policies", fields=fields, footer=f"Models: {aliases}")

    async def policy_set(self, caller: Caller, command: ParsedCommand) -> Reply:
        role: Role = command["role"]
        field, text = command["field"], command["value"]
        if not may_manage_role(caller.role.role, role):
            raise Denied(f"Only an owner can edit the {strong(role)} policy.", target=role.value)
        value = parse_policy_value(field, text, self.settings.models)
        async with self.sessions.begin() as session:
            if field == "workspace":
                if await active_key(session, str(value)) is None:  # the rule requests follow
                    return Reply.error(f"No active API key in workspace {code(value)}: add one first with "
                                       f"{code(f'/claude-admin keys add <label> env:<VAR> workspace={value}')}.")
            old, new = await update_policy(session, self.clock, actor_id=caller.user_id, role=role, field=field,
                                           value=value)
            policy = await load_policy(session, role)
        if field in USD_FIELDS:
            old, new = (format_usd(v) if isinstance(v, int) else v for v in (old, new))
        return Reply(f"{icon(Icon.DONE)} {strong(role)} {field}: {_shown(old)} → {_shown(new)}",
                     lines=[describe_policy(policy, self.settings.models.aliases),
                            "Applies from the next request, in every process."])

    # -- access requests --------------------------------------------------------------------------------
    async def pending_requests(self, caller: Caller, _command: ParsedCommand) -> Reply:
        pending = await self.requests.pending()
        lines = [f"{strong(f'#{r.id}')} {mention(r.user_id)} asks for {strong(r.role)} · "
                 f"{r.created_at:%Y-%m-%d %H:%M} UTC · “{_quoted(r.reason)}”" for r in pending]
        return Reply(counted(len(pending), "pending access request"),
                     lines=lines or [f"None: a refusal's {strong('Request access')} button sends one."],
                     footer="Approve or deny from the request's message, or "
                            + code("/claude-admin requests approve <id> [for=<n>d]") + " · "
                            + code("/claude-admin requests deny <id>") + "." if pending else None)

    async def approve_request(self, caller: Caller, command: ParsedCommand) -> Reply:
        return _decided(await self.requests.decide(_decider(caller), command["id"], approve=True,
                                                   duration=command["for"]))

    async def deny_request(self, caller: Caller, command: ParsedCommand) -> Reply:
        return _decided(await self.requests.decide(_decider(caller), command["id"], approve=False))


def _actor(actor: str) -> str:
    return mention(actor) if actor.startswith(("U", "W")) else actor


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(value) or "none"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _decider(caller: Caller) -> Requester | None:
    """The shell (`claude-gate requests …`) decides with every right; anyone else as themselves."""
    return None if caller.user_id == SHELL_ACTOR else caller.requester


def _decided(decision: Decision) -> Reply:
    match decision.kind:
        case DecisionKind.DECIDED:
            return Reply(f"{icon(Icon.DONE)} Request #{decision.request.id if decision.request else ''}: "
                         f"{decision.message}")
        case DecisionKind.REFUSED:
            return Reply.denied(decision.message)
    return Reply.error(decision.message)


def _quoted(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 120 else flat[:119] + "…"
