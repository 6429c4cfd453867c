"""User-group membership events keep the shared membership table current (any process may get them)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.services.access.groups import change_members, replace_members
from bot.store.models import Budget, GroupRoleMapping

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    groups = UserGroupEvents(runtime)
    runtime.bolt.event("subteam_members_changed")(groups.on_members_changed)
    runtime.bolt.event("subteam_updated")(groups.on_updated)


class UserGroupEvents:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_members_changed(self, event: dict[str, Any]) -> None:
        group_id = event.get("subteam_id")
        if not group_id:
            return
        async with self.runtime.sessions.begin() as session:
            mapped = await change_members(session, group_id, added=event.get("added_users") or [],
                                          removed=event.get("removed_users") or [])
        if mapped:
            log.info("membership of mapped group %s changed", group_id)

    async def on_updated(self, event: dict[str, Any]) -> None:
        subteam = event.get("subteam") or {}
        group_id = subteam.get("id")
        if not group_id:
            return
        async with self.runtime.sessions.begin() as session:
            mapping = await session.get(GroupRoleMapping, group_id)
            budget = await session.get(Budget, f"group:{group_id}")  # a pooled budget keeps its members too
            if mapping is None and budget is None:
                return
            for kept in (mapping, budget):
                if isinstance(kept, GroupRoleMapping):
                    kept.handle = subteam.get("handle") or kept.handle
                elif kept is not None:
                    kept.name = subteam.get("handle") or kept.name
            if subteam.get("date_delete"):  # a disabled group gives nobody a role
                await replace_members(session, self.runtime.clock, group_id, [])
            elif isinstance(subteam.get("users"), list):
                await replace_members(session, self.runtime.clock, group_id, subteam["users"])
