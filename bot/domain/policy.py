"""Role policies: which models, how many tokens, how often (the defaults of docs/admin.md)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.marks import strong
from bot.domain.roles import Role

RPM_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RolePolicy:
    role: Role
    models: tuple[str, ...] = ()  # aliases or full model IDs, in order of preference
    max_tokens: int = 0
    rpm_limit: int = 0
    daily_token_budget: int | None = None
    workspace: str = "default"
    attachments: bool = True  # files (images, PDFs, text) may go to Claude with a question
    daily_usd_micros: int | None = None  # per person, a day in BUDGET_TZ (policy field daily_usd)
    monthly_usd_micros: int | None = None  # per person, a calendar month (policy field monthly_usd)
    schedules: int = 0  # how many scheduled prompts a person keeps (0: none; docs/using.md)

    @property
    def allows_chat(self) -> bool:
        return bool(self.models) and self.max_tokens > 0 and self.rpm_limit > 0


_ALL = ("haiku", "sonnet", "opus")

DEFAULT_POLICIES: dict[Role, RolePolicy] = {
    Role.VIEWER: RolePolicy(Role.VIEWER),
    Role.USER: RolePolicy(Role.USER, ("haiku",), 512, 10, schedules=2),
    Role.POWER: RolePolicy(Role.POWER, _ALL, 4096, 60, schedules=10),
    Role.BILLING: RolePolicy(Role.BILLING),
    Role.ADMIN: RolePolicy(Role.ADMIN, _ALL, 8192, 200, schedules=20),
    Role.OWNER: RolePolicy(Role.OWNER, _ALL, 8192, 200, schedules=20),
}


@dataclass(frozen=True)
class TokenGrant:
    """The ``max_tokens`` a request is given, and what set it (named in the note of an answer it cuts)."""

    tokens: int
    limited_by: str  # e.g. "the 4,096-token limit of your role *power*"


def granted_max_tokens(policy: RolePolicy, tokens_left_today: int | None) -> TokenGrant:
    """The one place a request's ``max_tokens`` is decided: the role's ``max_tokens``, less only where a budget
    has less room left (docs/spend.md)."""
    grant = TokenGrant(policy.max_tokens, f"the {policy.max_tokens:,}-token limit of your role {strong(policy.role)}")
    if tokens_left_today is not None and tokens_left_today < grant.tokens:
        left = max(tokens_left_today, 1)
        grant = TokenGrant(left, f"the {left:,} tokens left of your daily budget of {policy.daily_token_budget:,}")
    return grant
