"""Per-channel settings (docs/channels-and-data.md): on/off, a default model, a prompt added there, the roles that may
ask there.

Pure values and the grammar of `channel <#channel> …`; stored by bot/services/channels, read by the gate with the
access statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.marks import code
from bot.domain.mentions import channel_link
from bot.domain.roles import Role

MAX_CHANNEL_PROMPT = 2_000  # characters added to the system prompt in a channel

# `<#C123|name>` (what Slack makes of a typed #name), `<#C123>` and `C123`; private channels may be G…
_CHANNEL = re.compile(r"^(?:<#(?P<mention>[CG][A-Z0-9]{2,20})(?:\|(?P<name>[^>]*))?>|(?P<plain>[CG][A-Z0-9]{2,20}))$")


@dataclass(frozen=True)
class ChannelRef:
    id: str
    name: str | None = None  # as Slack wrote it in the mention, if it did

    def __str__(self) -> str:
        return channel_link(self.id)


def parse_channel(text: str) -> ChannelRef | None:
    """``<#C123|name>``, ``<#C123>`` or ``C123`` → ChannelRef; anything else (a DM, a user, #name) → None."""
    match = _CHANNEL.match(text.strip())
    if not match:
        return None
    if match.group("mention"):
        return ChannelRef(match.group("mention"), (match.group("name") or "").lstrip("#") or None)
    return ChannelRef(match.group("plain"))


def is_channel(channel_id: str | None) -> bool:
    """Channels (public C…, private G…) have settings; DMs (D…) are personal and follow only the role."""
    return channel_id is not None and channel_id[:1] in ("C", "G")


class ChannelField(StrEnum):
    ENABLED = "enabled"
    MODEL = "model"
    PROMPT = "prompt"
    ROLES = "roles"


@dataclass(frozen=True)
class ChannelChange:
    """One setting to change; ``value`` None means back to the default (on, no model, no prompt, all roles)."""

    field: ChannelField
    value: bool | str | tuple[Role, ...] | None


class ChannelChangeError(ValueError):
    """The text of a channel change cannot be applied; ``str(exc)`` is one line for the user."""


CHANGE_USAGE = "on|off · model <alias>|none · prompt <text>|none · roles <role,…>|all"


def parse_channel_change(text: str) -> ChannelChange:
    """``on`` · ``off`` · ``model <alias>|none`` · ``prompt <text>|none`` · ``roles <role,…>|all``."""
    word, _, rest = text.strip().partition(" ")
    word, rest = word.lower(), rest.strip()
    if word in ("on", "off"):
        if rest:
            raise ChannelChangeError(f"{code(word)} takes nothing after it.")
        return ChannelChange(ChannelField.ENABLED, word == "on")
    if word == "model":
        if not rest or " " in rest:
            raise ChannelChangeError(f"Give one model alias (haiku, sonnet, opus), a model ID, or {code('none')}.")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", rest):
            raise ChannelChangeError(f"{code(rest[:40])} is not a model name.")
        return ChannelChange(ChannelField.MODEL, None if rest.lower() == "none" else rest)
    if word == "prompt":
        if not rest:
            raise ChannelChangeError(f"Give the text to add to the system prompt here, or {code('none')}.")
        if rest.lower() == "none":
            return ChannelChange(ChannelField.PROMPT, None)
        if len(rest) > MAX_CHANNEL_PROMPT:
            raise ChannelChangeError(f"The prompt has {len(rest):,} characters; at most {MAX_CHANNEL_PROMPT:,} "
                                     "are allowed.")
        return ChannelChange(ChannelField.PROMPT, rest)
    if word == "roles":
        if not rest:
            raise ChannelChangeError(f"Give a comma list of roles, or {code('all')}.")
        if rest.lower() == "all":
            return ChannelChange(ChannelField.ROLES, None)
        roles: list[Role] = []
        for name in (part.strip() for part in rest.replace(" ", ",").split(",")):
            if not name:
                continue
            role = Role.parse(name)
            if role is None:
                raise ChannelChangeError(f"{code(name[:40])} is not a role. Roles: {', '.join(Role)}.")
            if role not in roles:
                roles.append(role)
        if not roles:
            raise ChannelChangeError(f"Give a comma list of roles, or {code('all')}.")
        return ChannelChange(ChannelField.ROLES, tuple(sorted(roles, key=lambda r: r.rank)))
    shown = word[:40].replace("`", "'")
    raise ChannelChangeError(f"{code(shown)} is not a channel setting." if shown else "Say what to change.")


@dataclass(frozen=True)
class ChannelSettings:
    """What applies in one channel. A channel without a row has the defaults: on, everyone, no model, no prompt."""

    channel_id: str
    name: str | None = None
    enabled: bool = True
    off_by: str | None = None  # who switched it off
    model: str | None = None  # alias or model ID, used only within the asker's role
    prompt: str | None = None
    roles: tuple[Role, ...] | None = None  # None: every role that may chat
    set_by: dict[str, str] | None = None  # field → who set it last
    updated_at: datetime | None = None

    def allows(self, role: Role) -> bool:
        return self.roles is None or role in self.roles

    @property
    def configured(self) -> bool:
        return not self.enabled or self.model is not None or self.prompt is not None or self.roles is not None


def system_prompt_in_channel(system: str, channel_prompt: str | None) -> str:
    """The channel's prompt goes after the installation's system prompt, marked as this channel's instructions."""
    if not channel_prompt:
        return system
    return f"{system}\n\nInstructions for this channel, set by its admins:\n{channel_prompt}"
