"""`/claude` for everyone: help, status, model, usage (and the personal part of the App Home)."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.budgets import Period
from bot.domain.commands import SELF, ParsedCommand, subcommands_of
from bot.domain.marks import Icon, code, icon, strong
from bot.domain.pricing import format_usd
from bot.domain.replies import Reply
from bot.domain.requests import Requester
from bot.domain.words import counted
from bot.services.base import Service
from bot.services.conversation.access import access_snapshot
from bot.services.conversation.rate_window import rate_window
from bot.services.data.audit import add_audit
from bot.services.personal.preferences import preferred_model, set_preferred_model
from bot.services.schedules.store import count_of
from bot.services.spend.counters import tokens_today
from bot.services.spend.report import BudgetLine, budgets_of_person, cache_line
from bot.services.spend.usage import usage_summary


class PersonalService(Service):
    """`/claude` for everyone; its own grammar (bot/domain/commands.py `SELF`) is dispatched by `run`."""

    async def run(self, requester: Requester, command: ParsedCommand) -> Reply:
        match command.name:
            case "status":
                return await self.status(requester)
            case "model":
                return await self.model(requester, command["model"])
            case "usage":
                return await self.usage(requester)
            case _:
                return self.help()

    def help(self) -> Reply:
        lines = [f"{sub.usage} — {sub.summary}" for sub in subcommands_of(SELF)]
        lines.append(f"In a message: start with {code('--model <alias>')} to pick a model for that message.")
        return Reply("Claude Gate", lines=lines)

    async def status(self, requester: Requester) -> Reply:
        now = self.clock()
        catalog = self.settings.models
        async with self.sessions() as session:
            snapshot = await access_snapshot(session, requester.user_id, self.settings.default_role, self.clock())
            role, policy = snapshot.role, snapshot.policy
            window = await rate_window(session, requester.user_id, policy.rpm_limit, now)
            used = await tokens_today(session, requester.user_id, now, self.settings.budget_zone)
            preferred = await preferred_model(session, requester.user_id)
            budgets = await budgets_of_person(session, self.settings, requester.user_id, now)
            schedules = await count_of(session, requester.user_id)
        fields = [("Role", f"{strong(role.role)} (from {role.source_text})")]
        if not policy.allows_chat:
            fields.append(("Chat", f"not with this role: ask an admin for the role {strong('user')}"))
            return Reply("Your Claude Gate status", fields=fields)
        allowed = catalog.allowed(policy.models)
        default = catalog.resolve(preferred) if preferred else None
        model = default if default in allowed else allowed[0] if allowed else None
        left_now = f"{window.left} of {policy.rpm_limit}" + (
            f" · next slot in {window.free_in} s" if window.free_in else "")
        budget = (f"{max(0, policy.daily_token_budget - used):,} of {policy.daily_token_budget:,}"
                  if policy.daily_token_budget else f"no daily budget ({used:,} used today)")
        fields += [
            ("Models", ", ".join(code(catalog.alias_of(m)) for m in allowed)),
            ("Max tokens per answer", f"{policy.max_tokens:,}"),
            ("Requests left this minute", left_now),
            ("Tokens left today", budget),
            ("USD left", " · ".join(usd_left(line) for line in budgets) if budgets else "no USD budget applies"),
            ("Your model", code(catalog.alias_of(model)) if model else "none" + (
                " (your preference is not allowed for this role)" if preferred and default not in allowed else "")),
        ]
        if policy.schedules or schedules:
            fields.append(("Scheduled prompts", f"{schedules} of {policy.schedules} ({code('/claude schedules')})"))
        if self._guest_or_external_refused(requester):
            fields.append(("Note", "guest and Slack Connect accounts are refused by this installation"))
        return Reply("Your Claude Gate status", fields=fields)

    def _guest_or_external_refused(self, requester: Requester) -> bool:
        return (requester.is_guest and not self.settings.allow_guests) or (
            requester.is_external and not self.settings.allow_external_users)

    async def model(self, requester: Requester, name: str) -> Reply:
        catalog = self.settings.models
        model = catalog.resolve(name)
        async with self.sessions.begin() as session:
            snapshot = await access_snapshot(session, requester.user_id, self.settings.default_role, self.clock())
            role, policy = snapshot.role, snapshot.policy
            allowed = catalog.allowed(policy.models)
            names = ", ".join(code(catalog.alias_of(m)) for m in allowed) or "none"
            if model is None:
                return Reply.error(f"{code(name[:40])} is not a model I know. Your role {strong(role.role)} may use "
                                   f"{names}.", code("/claude model <alias>"))
            if model not in allowed:
                return Reply.error(f"Your role {strong(role.role)} may not use {code(name)}. It may use {names}.",
                                   code("/claude model <alias>"))
            stored = name.lower() if name.lower() in catalog.aliases else model
            await set_preferred_model(session, self.clock, requester.user_id, stored)
            add_audit(session, at=self.clock(), actor=requester.user_id, action="model.set",
                      target=requester.user_id, model=stored)
        return Reply(f"{icon(Icon.DONE)} Your default model is now {code(catalog.alias_of(model))} ({model}).",
                     lines=[f"Start a message with {code('--model <alias>')} to use another one for that message."])

    async def usage(self, requester: Requester) -> Reply:
        now = self.clock()
        lines = []
        async with self.sessions() as session:
            for days in (7, 30):
                summary = await usage_summary(session, since=now - timedelta(days=days), user_id=requester.user_id,
                                              prices=self.settings.prices)
                lines.append(f"{strong('Last ' + counted(days, 'day'))}: {counted(summary.requests, 'request')} · "
                             f"{summary.refused} refused · {summary.input_tokens + summary.output_tokens:,} tokens · "
                             f"estimated {format_usd(summary.cost_micros)}")
                if days == 30 and (summary.cache_read_tokens or summary.cache_write_tokens):
                    lines.append(cache_line(summary))
            budgets = await budgets_of_person(session, self.settings, requester.user_id, now)
        lines += [f"Budget — {line.text()}" for line in budgets]
        return Reply("Your Claude usage", lines=lines)


def usd_left(line: BudgetLine) -> str:
    """``$3.20 of $5.00 today (you)`` — what is left of one budget this period."""
    left = max(0, line.limit - (line.spent or 0))
    when = "today" if line.period is Period.DAY else "this month"
    return f"{format_usd(left)} of {format_usd(line.limit)} {when} ({line.label})"
