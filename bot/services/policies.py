"""Role policies as stored in the database (read fresh for every request, so edits apply at once)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.policy import DEFAULT_POLICIES, RolePolicy
from bot.domain.roles import Role
from bot.store.models import RolePolicyRow


def policy_from_row(row: RolePolicyRow) -> RolePolicy:
    return RolePolicy(
        role=Role(row.role),
        models=tuple(row.models or ()),
        max_tokens=row.max_tokens,
        rpm_limit=row.rpm_limit,
        daily_token_budget=row.daily_token_budget,
        workspace=row.workspace,
    )


async def load_policy(session: AsyncSession, role: Role) -> RolePolicy:
    row = await session.get(RolePolicyRow, role.value)
    return policy_from_row(row) if row else DEFAULT_POLICIES[role]


async def all_policies(session: AsyncSession) -> dict[Role, RolePolicy]:
    rows = await session.scalars(select(RolePolicyRow))
    stored = {Role(row.role): policy_from_row(row) for row in rows}
    return {role: stored.get(role, DEFAULT_POLICIES[role]) for role in Role}
