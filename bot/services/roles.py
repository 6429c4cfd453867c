"""Who has which role: explicit grants, the default role, bootstrap owners."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.roles import Right, Role, has_right, may_manage_role
from bot.services.access import EffectiveRole as EffectiveRole  # re-exported: roles are where people look
from bot.services.access import effective_role as effective_role
from bot.services.audit import add_audit
from bot.store.clock import Clock
from bot.store.models import RoleGrant

SHELL_ACTOR = "cli"


class RoleChangeDenied(Exception):
    """A grant or revoke the actor may not make; the message is one line for the actor."""


async def _owner_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).where(RoleGrant.role == Role.OWNER.value)) or 0


def _check_rights(actor_id: str, actor_role: Role | None, target_id: str, old: Role | None, new: Role | None) -> None:
    if actor_role is None:  # the shell: whoever runs `claude-gate` administers the install
        return
    if actor_id == target_id:
        raise RoleChangeDenied("Nobody changes their own role: ask another admin or owner.")
    for role in (old, new):
        if role is not None and not may_manage_role(actor_role, role):
            if has_right(actor_role, Right.MANAGE_ROLES):
                raise RoleChangeDenied(f"Only an owner can grant or revoke *{role}*.")
            raise RoleChangeDenied("Only admins and owners can change roles.")


async def grant_role(session: AsyncSession, clock: Clock, *, actor_id: str, actor_role: Role | None,
                     target_id: str, role: Role, team_id: str | None = None) -> RoleGrant:
    """Give ``target_id`` an explicit role (replacing any earlier grant), audited in the same transaction."""
    grant = await session.get(RoleGrant, target_id, with_for_update=True)
    old = Role(grant.role) if grant else None
    _check_rights(actor_id, actor_role, target_id, old, role)
    if old == Role.OWNER and role != Role.OWNER and await _owner_count(session) <= 1:
        raise RoleChangeDenied("That is the last owner: grant owner to someone else first.")
    now = clock()
    if grant is None:
        grant = RoleGrant(slack_user_id=target_id, team_id=team_id, role=role.value, granted_by=actor_id,
                          granted_at=now)
        session.add(grant)
    else:
        grant.role, grant.granted_by, grant.granted_at = role.value, actor_id, now
        grant.team_id = team_id or grant.team_id
    add_audit(session, at=now, actor=actor_id, action="grant", target=target_id, role=role.value,
              previous=old.value if old else None)
    return grant


async def revoke_role(session: AsyncSession, clock: Clock, *, actor_id: str, actor_role: Role | None,
                      target_id: str) -> Role | None:
    """Remove the explicit grant; returns the role it had, or None if there was none."""
    grant = await session.get(RoleGrant, target_id, with_for_update=True)
    if grant is None:
        return None
    old = Role(grant.role)
    _check_rights(actor_id, actor_role, target_id, old, None)
    if old == Role.OWNER and await _owner_count(session) <= 1:
        raise RoleChangeDenied("That is the last owner: grant owner to someone else first.")
    await session.delete(grant)
    add_audit(session, at=clock(), actor=actor_id, action="revoke", target=target_id, previous=old.value)
    return old


async def list_grants(session: AsyncSession, role: Role | None = None) -> list[RoleGrant]:
    query = select(RoleGrant).order_by(RoleGrant.role, RoleGrant.slack_user_id)
    if role is not None:
        query = query.where(RoleGrant.role == role.value)
    return list(await session.scalars(query))


async def admins_to_ask(session: AsyncSession, limit: int = 3) -> list[str]:
    """A few admins and owners a refused user can turn to."""
    query = (select(RoleGrant.slack_user_id).where(RoleGrant.role.in_([Role.ADMIN.value, Role.OWNER.value]))
             .order_by(RoleGrant.role.desc(), RoleGrant.granted_at).limit(limit))
    return list(await session.scalars(query))


async def bootstrap_owners(session: AsyncSession, clock: Clock, user_ids: list[str]) -> list[str]:
    """BOOTSTRAP_OWNERS become owners if no owner exists yet; returns who was made owner."""
    if not user_ids or await _owner_count(session) > 0:
        return []
    for user_id in user_ids:
        await grant_role(session, clock, actor_id="bootstrap", actor_role=None, target_id=user_id, role=Role.OWNER)
    return user_ids
