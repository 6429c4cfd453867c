"""Access requests: a refusal turned into a request that the people who may grant the role approve or deny (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.grants import describe_duration, until_text
from bot.domain.marks import strong
from bot.domain.mentions import mention
from bot.domain.roles import Role

REQUESTABLE_ROLES = (Role.USER, Role.POWER)  # admin and owner are never requested
REQUEST_LIFETIME = timedelta(days=7)
REASON_LIMIT = 500
# What an approver's buttons offer; None is permanent
APPROVAL_CHOICES: dict[str, timedelta | None] = {
    "1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30), "permanent": None,
}


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AccessRequestView:
    """An access request as people are shown it."""

    id: int
    user_id: str
    role: Role
    reason: str
    created_at: datetime
    status: RequestStatus = RequestStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    duration: timedelta | None = None  # of an approval for a time
    grant_until: datetime | None = None

    @property
    def expires_at(self) -> datetime:
        return self.created_at + REQUEST_LIFETIME

    @property
    def decision_text(self) -> str:
        """One line: who decided what (empty while pending)."""
        who = _who(self.decided_by)
        match self.status:
            case RequestStatus.APPROVED if self.grant_until is not None and self.duration is not None:
                return (f"Approved by {who}: {strong(self.role)} for {describe_duration(self.duration)}, "
                        f"until {until_text(self.grant_until)}.")
            case RequestStatus.APPROVED:
                return f"Approved by {who}: {strong(self.role)} permanently."
            case RequestStatus.DENIED:
                return f"Denied by {who}."
            case RequestStatus.EXPIRED:
                return f"Expired: nobody decided within {REQUEST_LIFETIME.days} days."
        return ""


def _who(actor: str | None) -> str:
    if actor and actor.startswith(("U", "W")):
        return mention(actor)
    return "an admin (from the command line)" if actor == "cli" else "an admin"


def lowest_role_above(current: Role, passes: dict[Role, bool]) -> Role | None:
    """The lowest requestable role above ``current`` whose policy would have let the request through."""
    for role in REQUESTABLE_ROLES:
        if role.rank > current.rank and passes.get(role):
            return role
    return None


def requestable_above(current: Role) -> list[Role]:
    return [role for role in REQUESTABLE_ROLES if role.rank > current.rank]
