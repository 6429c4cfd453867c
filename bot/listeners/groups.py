"""User-group membership events keep the shared membership table current (any process may get them)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.services.access.groups import UserGroupSync

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    groups = UserGroupEvents(runtime.user_groups)
    runtime.bolt.event("subteam_members_changed")(groups.on_members_changed)
    runtime.bolt.event("subteam_updated")(groups.on_updated)


class UserGroupEvents:
    def __init__(self, user_groups: UserGroupSync) -> None:
        self.user_groups = user_groups

    async def on_members_changed(self, event: dict[str, Any]) -> None:
        group_id = event.get("subteam_id")
        if not group_id:
            return
        if await self.user_groups.members_changed(group_id, added=event.get("added_users") or [],
                                                  removed=event.get("removed_users") or []):
            log.info("membership of mapped group %s changed", group_id)

    async def on_updated(self, event: dict[str, Any]) -> None:
        subteam = event.get("subteam") or {}
        group_id = subteam.get("id")
        if not group_id:
            return
        users = subteam.get("users")
        await self.user_groups.updated(group_id, handle=subteam.get("handle") or None,
                                       users=users if isinstance(users, list) else None,
                                       deleted=bool(subteam.get("date_delete")))
