"""Who has which role: explicit grants, the default role, bootstrap owners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.errors import RoleChangeDenied as RoleChangeDenied
from bot.domain.grants import may_be_time_bound, until_text
from bot.domain.marks import strong
from bot.domain.mentions import mention
from bot.domain.roles import Right, Role, has_right, may_manage_role
from bot.services.conversation.access import EffectiveRole as EffectiveRole  # re-exported: roles are where people look
from bot.services.conversation.access import effective_role as effective_role
from bot.services.data.audit import add_audit
from bot.store.clock import Clock
from bot.store.db import Conn, rows_affected
from bot.store.models import RoleGrant, TimedGrant

SHELL_ACTOR = "cli"
SCHEDULER_ACTOR = "scheduler"


async def _owner_count(session: AsyncSession) -> int:
    """Permanent explicit owner grants: owners from a mapped group can vanish with a Slack change, and an owner grant
    is never time-bound. Call it under ``lock_role_changes``, or two changes at once can each count the other."""
    return await session.scalar(select(func.count()).where(RoleGrant.role == Role.OWNER.value)) or 0


async def lock_role_changes(session: AsyncSession) -> None:
    """Serialise role changes across processes until the transaction ends, so the owner count a change reads is
    the count it leaves (two owners revoking each other at the same moment: one of them is refused).

    PostgreSQL: a transaction-scoped advisory lock, taken before any grant row is read (READ COMMITTED: every
    statement after it sees what the previous holder committed). SQLite: every transaction is BEGIN IMMEDIATE
    (bot/store/db.py), which already excludes every other writer, in this process and in others.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('claude-gate:role-changes', 0))"))


async def _check_rights(session: AsyncSession, clock: Clock, actor_id: str, actor_role: Role | None, target_id: str,
                        *roles: Role | None) -> None:
    """The actor may change ``target_id``'s grants from or to ``roles``, judged also on the target's effective role
    whatever its source (explicit, time-bound, a mapped user group): an admin cannot touch an owner's grants, even
    their `user` grant, nor offboard an owner whose role comes from a group."""
    if actor_role is None:  # the shell: whoever runs `claude-gate` administers the install
        return
    if actor_id == target_id:
        raise RoleChangeDenied("Nobody changes their own role: ask another admin or owner.")
    if not has_right(actor_role, Right.MANAGE_ROLES):
        raise RoleChangeDenied("Only admins and owners can change roles.")
    held = await effective_role(session, target_id, Role.VIEWER, clock())  # DEFAULT_ROLE is everyone's: not theirs
    if not may_manage_role(actor_role, held.role):
        raise RoleChangeDenied(f"Only an owner can change the role of {mention(target_id)}, who is "
                               f"{strong(held.role)} (from {held.source_text}).")
    for role in roles:
        if role is not None and not may_manage_role(actor_role, role):
            raise RoleChangeDenied(f"Only an owner can grant or revoke {strong(role)}.")


async def _live_timed_grant(session: AsyncSession, target_id: str, now: datetime) -> TimedGrant | None:
    """The person's time-bound grant, locked; one that has already expired is deleted (it gives nothing)."""
    timed = await session.get(TimedGrant, target_id, with_for_update=True)
    if timed is not None and timed.expires_at <= now:
        await session.delete(timed)
        await session.flush()
        return None
    return timed


@dataclass(frozen=True)
class HeldGrants:
    """A person's explicit grants as a role change finds them, locked (an expired time-bound one is gone)."""

    now: datetime
    grant: RoleGrant | None
    timed: TimedGrant | None
    role: Role | None  # the permanent grant's role
    timed_role: Role | None


async def _held_grants(session: AsyncSession, clock: Clock, target_id: str) -> HeldGrants:
    """Take the role-change lock, then read ``target_id``'s grants under it."""
    await lock_role_changes(session)
    now = clock()
    grant = await session.get(RoleGrant, target_id, with_for_update=True)
    timed = await _live_timed_grant(session, target_id, now)
    return HeldGrants(now, grant, timed, Role(grant.role) if grant else None, Role(timed.role) if timed else None)


async def grant_role(session: AsyncSession, clock: Clock, *, actor_id: str, actor_role: Role | None,
                     target_id: str, role: Role, team_id: str | None = None,
                     expires_at: datetime | None = None) -> RoleGrant | TimedGrant:
    """Give ``target_id`` an explicit role, audited in the same transaction.

    Permanent (``expires_at`` None): replaces the person's explicit grants, a time-bound one included.
    Time-bound: sits above the permanent grant, which stays and applies again once it ends; it replaces an earlier
    time-bound grant, must be above the permanent grant and is never for ``owner``.
    """
    held = await _held_grants(session, clock, target_id)
    now, grant, timed, old, old_timed = held.now, held.grant, held.timed, held.role, held.timed_role
    await _check_rights(session, clock, actor_id, actor_role, target_id, old, old_timed, role)
    if expires_at is not None:
        if not may_be_time_bound(role):
            raise RoleChangeDenied(f"A grant of {strong('owner')} cannot be time-bound: owners are permanent.")
        if expires_at <= now:
            raise RoleChangeDenied("A time-bound grant must end in the future.")
        if old is not None and role.rank <= old.rank:
            raise RoleChangeDenied(f"{mention(target_id)} already has {strong(old)} permanently: a time-bound grant "
                                   "must be above it.")
        if timed is None:
            timed = TimedGrant(slack_user_id=target_id, team_id=team_id, role=role.value, granted_by=actor_id,
                               granted_at=now, expires_at=expires_at)
            session.add(timed)
        else:
            timed.role, timed.granted_by, timed.granted_at, timed.expires_at = role.value, actor_id, now, expires_at
            timed.team_id = team_id or timed.team_id
        add_audit(session, at=now, actor=actor_id, action="grant", target=target_id, role=role.value,
                  until=expires_at.isoformat(), previous=old_timed.value if old_timed else None,
                  permanent=old.value if old else None)
        return timed
    if old == Role.OWNER and role != Role.OWNER and await _owner_count(session) <= 1:
        raise RoleChangeDenied("That is the last owner: grant owner to someone else first.")
    if timed is not None:
        await session.delete(timed)
    if grant is None:
        grant = RoleGrant(slack_user_id=target_id, team_id=team_id, role=role.value, granted_by=actor_id,
                          granted_at=now)
        session.add(grant)
    else:
        grant.role, grant.granted_by, grant.granted_at = role.value, actor_id, now
        grant.team_id = team_id or grant.team_id
    add_audit(session, at=now, actor=actor_id, action="grant", target=target_id, role=role.value,
              previous=old.value if old else None,
              **({"ended_time_bound": old_timed.value} if old_timed else {}))
    return grant


async def revoke_role(session: AsyncSession, clock: Clock, *, actor_id: str, actor_role: Role | None,
                      target_id: str) -> Role | None:
    """Remove the explicit grants (time-bound and permanent); returns the highest role they gave, or None."""
    held = await _held_grants(session, clock, target_id)
    now, grant, timed, old, old_timed = held.now, held.grant, held.timed, held.role, held.timed_role
    await _check_rights(session, clock, actor_id, actor_role, target_id, old, old_timed)
    if grant is None and timed is None:
        return None
    if old == Role.OWNER and await _owner_count(session) <= 1:
        raise RoleChangeDenied("That is the last owner: grant owner to someone else first.")
    if grant is not None:
        await session.delete(grant)
    if timed is not None:
        await session.delete(timed)
    add_audit(session, at=now, actor=actor_id, action="revoke", target=target_id,
              previous=old.value if old else None,
              **({"time_bound": timed.role, "until": timed.expires_at.isoformat()} if timed else {}))
    removed = [r for r in (old, old_timed) if r is not None]
    return max(removed, key=lambda r: r.rank)


@dataclass(frozen=True)
class EndedGrant:
    user_id: str
    role: Role
    expired_at: datetime


async def end_expired_grants(session: AsyncSession, now: datetime, limit: int = 200) -> list[EndedGrant]:
    """Delete time-bound grants that have passed, audited; each is ended by exactly one caller (conditional
    delete), so two processes running this at once never DM anyone twice."""
    due = (await session.execute(select(TimedGrant.slack_user_id, TimedGrant.role, TimedGrant.expires_at)
                                 .where(TimedGrant.expires_at <= now).order_by(TimedGrant.expires_at)
                                 .limit(limit))).all()
    ended = []
    for user_id, role, expires_at in due:
        result = await session.execute(delete(TimedGrant).where(TimedGrant.slack_user_id == user_id,
                                                                TimedGrant.expires_at <= now)
                                       .execution_options(synchronize_session=False))
        if rows_affected(result):
            add_audit(session, at=now, actor=SCHEDULER_ACTOR, action="grant.expired", target=user_id, role=role,
                      until=expires_at.isoformat())
            ended.append(EndedGrant(user_id, Role(role), expires_at))
    return ended


async def list_timed_grants(session: AsyncSession, now: datetime, role: Role | None = None) -> list[TimedGrant]:
    query = select(TimedGrant).where(TimedGrant.expires_at > now).order_by(TimedGrant.role, TimedGrant.slack_user_id)
    if role is not None:
        query = query.where(TimedGrant.role == role.value)
    return list(await session.scalars(query))


def ends_text(grant: TimedGrant) -> str:
    return f"until {until_text(grant.expires_at)}"


async def list_grants(session: AsyncSession, role: Role | None = None) -> list[RoleGrant]:
    query = select(RoleGrant).order_by(RoleGrant.role, RoleGrant.slack_user_id)
    if role is not None:
        query = query.where(RoleGrant.role == role.value)
    return list(await session.scalars(query))


async def admins_to_ask(session: Conn, limit: int = 3) -> list[str]:
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
