"""Slack user groups mapped to roles; their membership is kept in the database for every process."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.budgets import Scope
from bot.domain.roles import Role
from bot.services.base import Service
from bot.services.data.audit import add_audit
from bot.store.clock import Clock
from bot.store.models import Budget, GroupMember, GroupRoleMapping


async def map_group(session: AsyncSession, clock: Clock, *, actor_id: str, group_id: str, handle: str | None,
                    role: Role, members: Iterable[str]) -> GroupRoleMapping:
    now = clock()
    mapping = await session.get(GroupRoleMapping, group_id)
    previous = mapping.role if mapping else None
    if mapping is None:
        mapping = GroupRoleMapping(usergroup_id=group_id, handle=handle, role=role.value, mapped_by=actor_id,
                                   mapped_at=now)
        session.add(mapping)
    else:
        mapping.role, mapping.handle, mapping.mapped_by, mapping.mapped_at = role.value, handle, actor_id, now
    await replace_members(session, clock, group_id, members)
    add_audit(session, at=now, actor=actor_id, action="groups.map", target=group_id, handle=handle, role=role.value,
              previous=previous)
    return mapping


async def unmap_group(session: AsyncSession, clock: Clock, *, actor_id: str, group_id: str) -> GroupRoleMapping | None:
    mapping = await session.get(GroupRoleMapping, group_id)
    if mapping is None:
        return None
    if await session.get(Budget, Scope.group(group_id).key) is None:  # a pooled budget still needs the members
        await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id))
    await session.delete(mapping)
    add_audit(session, at=clock(), actor=actor_id, action="groups.unmap", target=group_id, handle=mapping.handle,
              previous=mapping.role)
    return mapping


async def find_mapping(session: AsyncSession, *, group_id: str | None, handle: str | None) -> GroupRoleMapping | None:
    if group_id:
        return await session.get(GroupRoleMapping, group_id)
    return await session.scalar(select(GroupRoleMapping).where(GroupRoleMapping.handle == handle))


async def replace_members(session: AsyncSession, clock: Clock, group_id: str, members: Iterable[str]) -> None:
    await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id))
    session.add_all(GroupMember(usergroup_id=group_id, slack_user_id=user) for user in dict.fromkeys(members))
    mapping = await session.get(GroupRoleMapping, group_id)
    if mapping is not None:
        mapping.members_synced_at = clock()


async def change_members(session: AsyncSession, group_id: str, *, added: Iterable[str] = (),
                         removed: Iterable[str] = ()) -> bool:
    """Apply a `subteam_members_changed` delta; False if the group is neither mapped nor budgeted (nothing
    stored)."""
    if (await session.get(GroupRoleMapping, group_id) is None
            and await session.get(Budget, Scope.group(group_id).key) is None):
        return False
    removed = list(removed)
    if removed:
        await session.execute(delete(GroupMember).where(GroupMember.usergroup_id == group_id,
                                                        GroupMember.slack_user_id.in_(removed)))
    existing = set(await session.scalars(select(GroupMember.slack_user_id).where(GroupMember.usergroup_id == group_id)))
    new = [user for user in dict.fromkeys(added) if user not in existing]
    session.add_all(GroupMember(usergroup_id=group_id, slack_user_id=user) for user in new)
    return True


async def list_mappings(session: AsyncSession) -> list[tuple[GroupRoleMapping, int]]:
    mappings = list(await session.scalars(select(GroupRoleMapping).order_by(GroupRoleMapping.role)))
    counts = {}
    for mapping in mappings:
        members = await session.scalars(select(GroupMember.slack_user_id)
                                        .where(GroupMember.usergroup_id == mapping.usergroup_id))
        counts[mapping.usergroup_id] = len(list(members))
    return [(m, counts[m.usergroup_id]) for m in mappings]


class UserGroupSync(Service):
    """Slack's user-group events applied to the stored groups: the members of a mapped or budgeted group, its
    handle, and a disabled group's members dropped. Groups neither mapped nor budgeted are not stored."""

    async def members_changed(self, group_id: str, *, added: Iterable[str], removed: Iterable[str]) -> bool:
        """`subteam_members_changed`: False if the group is neither mapped nor budgeted (nothing stored)."""
        async with self.sessions.begin() as session:
            return await change_members(session, group_id, added=added, removed=removed)

    async def updated(self, group_id: str, *, handle: str | None, users: list[str] | None, deleted: bool) -> None:
        """`subteam_updated`: a new handle, the full member list when Slack sends one, none once it is disabled."""
        async with self.sessions.begin() as session:
            mapping = await session.get(GroupRoleMapping, group_id)
            budget = await session.get(Budget, Scope.group(group_id).key)  # a pooled budget keeps its members too
            if mapping is None and budget is None:
                return
            if mapping is not None:
                mapping.handle = handle or mapping.handle
            if budget is not None:
                budget.name = handle or budget.name
            if deleted:  # a disabled group gives nobody a role
                await replace_members(session, self.clock, group_id, [])
            elif users is not None:
                await replace_members(session, self.clock, group_id, users)
