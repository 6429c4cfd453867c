"""Per-channel settings (docs/channels-and-data.md): `/claude-admin channels`, `channel <#channel> [change]`,
`claude-gate channel`.

Stored in `channel_settings` and read by the gate with its access statement on every request, so a change made by
any process applies to the next request everywhere. Every change is audited in its own transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from bot.domain.channels import (
    ChannelChange,
    ChannelField,
    ChannelRef,
    ChannelSettings,
)
from bot.domain.marks import Icon, code, icon, strong
from bot.domain.mentions import channel_link, mention
from bot.domain.replies import Reply
from bot.domain.secrets import SecretPolicy, kinds_phrase, secret_kinds
from bot.services.base import Service
from bot.services.conversation.access import channel_roles
from bot.services.data.audit import add_audit
from bot.services.ports import ChannelNotFound
from bot.store.models import ChannelSetting


def settings_of(row: ChannelSetting) -> ChannelSettings:
    return ChannelSettings(row.channel_id, row.name, row.enabled, row.off_by, row.model, row.prompt,
                           channel_roles(row.roles), dict(row.set_by or {}), row.updated_at)


async def configured_channels(session: AsyncSession) -> list[ChannelSettings]:
    """Channels whose settings differ from the defaults (on, every role, no model, no prompt), by name."""
    rows = await session.scalars(select(ChannelSetting).order_by(ChannelSetting.name, ChannelSetting.channel_id))
    return [settings for settings in map(settings_of, rows) if settings.configured]


async def channel_id_named(session: AsyncSession, name: str) -> str | None:
    """The ID of a channel with settings stored under ``name`` (as Slack spells it, without the #); None if none."""
    return await session.scalar(select(ChannelSetting.channel_id).where(ChannelSetting.name == name).limit(1))


def who(actor: str | None) -> str:
    if not actor:
        return "nobody yet"
    return mention(actor) if actor[:1] in ("U", "W") else f"{code(actor)} (the shell)"


def summary_line(channel: ChannelSettings) -> str:
    parts = [strong("off") + (f" (by {who(channel.off_by)})" if channel.off_by else "") if not channel.enabled
             else "on"]
    if channel.roles is not None:
        parts.append("roles " + (", ".join(channel.roles) or "none"))
    if channel.model:
        parts.append(f"model {code(channel.model)}")
    if channel.prompt:
        parts.append(f"prompt of {len(channel.prompt):,} characters")
    name = f" (#{channel.name})" if channel.name else ""
    return f"{channel_link(channel.channel_id)}{name} · " + " · ".join(parts)


def _shown_value(change: ChannelChange) -> str:
    match change.field:
        case ChannelField.ENABLED:
            return "on" if change.value else "off"
        case ChannelField.ROLES:
            return ", ".join(change.value) if isinstance(change.value, tuple) else "all"
        case _:
            return "none" if change.value is None else str(change.value)


class ChannelService(Service):
    """One channel's settings, shown or changed (`/claude-admin channel`, bot/services/channels/commands.py)."""

    async def show(self, ref: ChannelRef) -> Reply:
        async with self.sessions() as session:
            row = await session.get(ChannelSetting, ref.id)
            current = settings_of(row) if row else ChannelSettings(ref.id, ref.name)
        set_by = current.set_by or {}

        def by(field: ChannelField) -> str:
            return f" · set by {who(set_by.get(field))}" if field in set_by else ""

        state = "on" if current.enabled else f"{strong('off')} (switched off by {who(current.off_by)})"
        roles = "every role that may chat" if current.roles is None else ", ".join(current.roles) or "none"
        model = f"{code(current.model)} (within each person's role)" if current.model else "each person's own"
        fields = [
            ("Claude here", state + by(ChannelField.ENABLED)),
            ("Roles", roles + by(ChannelField.ROLES)),
            ("Model", model + by(ChannelField.MODEL)),
            ("Prompt", (f"{len(current.prompt):,} characters" if current.prompt else "none")
             + by(ChannelField.PROMPT)),
        ]
        lines = [f"> {line}" for line in current.prompt.splitlines()] if current.prompt else []
        name = f" (#{current.name})" if current.name else ""
        return Reply(f"Settings of {channel_link(ref.id)}{name}", fields=fields, lines=lines,
                     footer="The prompt is added to the system prompt there and shown only to admins.")

    async def change(self, actor: str, ref: ChannelRef, change: ChannelChange) -> Reply:
        if change.field is ChannelField.MODEL and change.value is not None:
            catalog = self.settings.models
            model = catalog.resolve(str(change.value))
            if model is None:
                aliases = ", ".join(code(alias) for alias in catalog.aliases)
                return Reply.error(f"{code(str(change.value)[:40])} is not a model I know. Aliases: {aliases}.",
                                   code("/claude-admin channel #channel model <alias>|none"))
            text = str(change.value)
            change = ChannelChange(change.field, text.lower() if text.lower() in catalog.aliases else model)
        if change.field is ChannelField.PROMPT and isinstance(change.value, str) and (
                self.settings.secret_policy is not SecretPolicy.OFF and (kinds := secret_kinds(change.value))):
            return Reply.error(f"The prompt contains {kinds_phrase(kinds)}: it would be sent to Claude with every "
                               "answer here. Nothing was saved; rotate it.",
                               code("/claude-admin channel #channel prompt <text>|none"))
        try:
            name = await self.slack.channel_name(ref.id)
        except ChannelNotFound:
            return Reply.error(f"Slack knows no channel {ref.id} that I can see: invite me there first, or check "
                               "the channel.", code("/claude-admin channel #channel …"))
        # two admins configuring a new channel at once: the loser updates the winner's row
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(IntegrityError), stop=stop_after_attempt(2),
                                           reraise=True):
            with attempt:
                async with self.sessions.begin() as session:
                    await self._apply(session, actor, ref, name or ref.name, change)
        return Reply(f"{icon(Icon.DONE)} {channel_link(ref.id)} {change.field.value}: {_shown_value(change)}",
                     lines=[self._effect(change), "Applies from the next message there, in every process."])

    async def _apply(self, session: AsyncSession, actor: str, ref: ChannelRef, name: str | None,
                     change: ChannelChange) -> None:
        now: datetime = self.clock()
        row = await session.get(ChannelSetting, ref.id, with_for_update=True)
        if row is None:
            row = ChannelSetting(channel_id=ref.id, enabled=True, set_by={}, updated_at=now)
            session.add(row)
        old: Any
        match change.field:
            case ChannelField.ENABLED:
                old = row.enabled
                row.enabled = bool(change.value)
                row.off_by = None if change.value else actor
            case ChannelField.MODEL:
                old, row.model = row.model, change.value if isinstance(change.value, str) else None
            case ChannelField.PROMPT:
                old, row.prompt = row.prompt, change.value if isinstance(change.value, str) else None
            case ChannelField.ROLES:
                old = row.roles
                row.roles = [r.value for r in change.value] if isinstance(change.value, tuple) else None
        row.name = name or row.name
        row.set_by = {**(row.set_by or {}), change.field.value: actor}
        row.updated_at = now
        detail: dict[str, Any] = {"setting": change.field.value}
        if change.field is ChannelField.PROMPT:  # its length, not its text: the audit log is exported to SIEMs
            detail |= {"old_chars": len(old or ""), "new_chars": len(row.prompt or "")}
        else:
            detail |= {"old": old, "new": _shown_value(change)}
        add_audit(session, at=now, actor=actor, action="channel.set", target=ref.id, **detail)

    @staticmethod
    def _effect(change: ChannelChange) -> str:
        match change.field:
            case ChannelField.ENABLED:
                return ("Claude answers here again, by each person's role." if change.value else
                        "Mentions here get one private line saying who switched Claude off; nothing goes to Claude.")
            case ChannelField.MODEL:
                return ("Each person's own model applies here." if change.value is None else
                        "The default model here for everyone whose role may use it; " + code("--model")
                        + " still chooses.")
            case ChannelField.PROMPT:
                return ("Only the installation's system prompt applies here." if change.value is None else
                        "Added to the system prompt of every answer here.")
            case ChannelField.ROLES:
                return ("Every role that may chat may ask here." if change.value is None else
                        "Only these roles may ask here (admins and owners included only if listed).")
        return ""
