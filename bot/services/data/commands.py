"""The audit and erasure rows of `/claude-admin`: audit, audit export, forget.

The dispatcher (bot/services/admin/dispatcher.py) checks the caller's rights before any of these run; a Denied is
audited and answered there. Every export and erasure is audited.
"""

from __future__ import annotations

from datetime import timedelta

from bot.domain.commands import ParsedCommand
from bot.domain.errors import Denied
from bot.domain.marks import Icon, code, icon, strong
from bot.domain.mentions import mention
from bot.domain.replies import Reply
from bot.domain.roles import may_manage_role
from bot.domain.words import counted
from bot.services.base import Caller, Handler, Service
from bot.services.conversation.access import effective_role
from bot.services.data.audit import add_audit, recent_audit
from bot.services.data.erasure import forget_person
from bot.services.data.export import audit_jsonl

DEFAULT_AUDIT_ROWS = 20
MAX_AUDIT_ROWS = 100
DEFAULT_EXPORT_DAYS = 30
MAX_EXPORT_DAYS = 3650


class DataCommands(Service):
    def handlers(self) -> dict[str, Handler]:
        return {"audit": self.audit, "audit export": self.audit_export, "forget": self.forget}

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
            lines.append(f"{code(f'{entry.at:%Y-%m-%d %H:%M}')} {actor} {strong(entry.action)}{target}"
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
        entries = counted(rows, "audit entry", "audit entries")
        where = await self.slack.upload_file(caller.user_id, filename=filename, content=content or b"",
                                                 title=f"Claude Gate audit log, last {counted(days, 'day')}",
                                                 comment=f"{entries} since {since:%Y-%m-%d %H:%M} UTC, "
                                                         "one JSON object a line.")
        return Reply(f"{icon(Icon.DONE)} {entries} of the last {counted(days, 'day')} are in {where}.")

    async def forget(self, caller: Caller, command: ParsedCommand) -> Reply:
        """Erase what was stored of a person's words; owners only for admins and owners. Audited."""
        target = command["user"]
        now = self.clock()
        async with self.sessions.begin() as session:
            role = (await effective_role(session, target, self.settings.default_role, now)).role
            allowed = may_manage_role(caller.role.role, role)
            if allowed:
                erased = await forget_person(session, target)
                add_audit(session, at=now, actor=caller.user_id, action="forget", target=target, **erased.counts)
        if not allowed:
            raise Denied(f"Only an owner can erase the data of an {strong(role)}.", target=target)
        parts = ", ".join(counted(count, name.replace("_", " ").removesuffix("s"))
                          for name, count in erased.counts.items())
        return Reply(f"{icon(Icon.DONE)} Erased what Claude Gate stored of {mention(target)}'s words: {parts}.",
                     lines=["Their request counts, tokens, costs and 👍/👎 ratings stay, under the same ID; so do "
                            "their roles and the audit log."])
