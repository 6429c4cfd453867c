"""What a person may do with Claude, for telling them up front (the gate still decides every request)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.roles import Role


@dataclass(frozen=True)
class ChatAccess:
    role: Role
    can_chat: bool
    models: tuple[str, ...] = ()  # aliases (or model IDs) the role may use, the default first
    max_tokens: int = 0
    rpm_limit: int = 0
    reason: str = ""  # why not, when ``can_chat`` is False
    hint: str = ""  # what to do about it
