"""The six built-in roles, their rank and their rights (docs/admin.md)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    USER = "user"
    POWER = "power"
    BILLING = "billing"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Role | None:
        try:
            return cls(text.strip().lower())
        except ValueError:
            return None


class Right(StrEnum):
    CHAT = "chat"
    VIEW_USAGE = "view_usage"
    MANAGE_ROLES = "manage_roles"  # grant/revoke roles below admin
    MANAGE_ADMINS = "manage_admins"  # grant/revoke admin and owner
    MANAGE_KEYS = "manage_keys"
    EDIT_POLICY = "edit_policy"
    VIEW_AUDIT = "view_audit"
    MANAGE_CHANNELS = "manage_channels"  # per-channel settings (docs/channels-and-data.md)


_RANK = {role: rank for rank, role in enumerate(Role)}

PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.OWNER})

RIGHTS: dict[Role, frozenset[Right]] = {
    Role.VIEWER: frozenset(),
    Role.USER: frozenset({Right.CHAT}),
    Role.POWER: frozenset({Right.CHAT}),
    Role.BILLING: frozenset({Right.VIEW_USAGE}),
    Role.ADMIN: frozenset(
        {Right.CHAT, Right.VIEW_USAGE, Right.MANAGE_ROLES, Right.MANAGE_KEYS, Right.EDIT_POLICY, Right.VIEW_AUDIT,
         Right.MANAGE_CHANNELS}
    ),
    Role.OWNER: frozenset(Right),
}


def has_right(role: Role, right: Right) -> bool:
    return right in RIGHTS[role]


def highest(roles: list[Role]) -> Role:
    return max(roles, key=lambda role: role.rank)


def may_manage_role(actor: Role, target: Role) -> bool:
    """Whether ``actor`` may grant, revoke or edit the policy of ``target``."""
    if target in PRIVILEGED_ROLES:
        return has_right(actor, Right.MANAGE_ADMINS)
    return has_right(actor, Right.MANAGE_ROLES)
