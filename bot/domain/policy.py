"""Role policies: which models, how many tokens, how often (PRODUCT §1 defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.roles import Role

DEFAULT_REQUESTED_MAX_TOKENS = 1024
RPM_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RolePolicy:
    role: Role
    models: tuple[str, ...] = ()  # aliases or full model IDs, in order of preference
    max_tokens: int = 0
    rpm_limit: int = 0
    daily_token_budget: int | None = None
    workspace: str = "default"

    @property
    def allows_chat(self) -> bool:
        return bool(self.models) and self.max_tokens > 0 and self.rpm_limit > 0


_ALL = ("haiku", "sonnet", "opus")

DEFAULT_POLICIES: dict[Role, RolePolicy] = {
    Role.VIEWER: RolePolicy(Role.VIEWER),
    Role.USER: RolePolicy(Role.USER, ("haiku",), 512, 10),
    Role.POWER: RolePolicy(Role.POWER, _ALL, 4096, 60),
    Role.BILLING: RolePolicy(Role.BILLING),
    Role.ADMIN: RolePolicy(Role.ADMIN, _ALL, 8192, 200),
    Role.OWNER: RolePolicy(Role.OWNER, _ALL, 8192, 200),
}


def granted_max_tokens(requested: int | None, policy: RolePolicy, tokens_left_today: int | None) -> int:
    """``min(requested, role max_tokens)``, requested defaulting to 1024, never above today's budget."""
    wanted = DEFAULT_REQUESTED_MAX_TOKENS if requested is None else requested
    granted = min(wanted, policy.max_tokens)
    if tokens_left_today is not None:
        granted = min(granted, tokens_left_today)
    return max(granted, 1)
