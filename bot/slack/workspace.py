"""The Slack side of the Workspace protocol: DMs, user groups, profiles."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.commands import GroupRef
from bot.domain.requests import Requester
from bot.services.workspace import UserGroupNotFound
from bot.slack.directory import UserDirectory

log = logging.getLogger(__name__)


class SlackWorkspace:
    def __init__(self, client: AsyncWebClient, directory: UserDirectory) -> None:
        self.client = client
        self.directory = directory

    async def send_dm(self, user_id: str, text: str) -> None:
        try:
            await self.client.chat_postMessage(channel=user_id, text=text)
        except Exception as exc:  # a DM that cannot be delivered never undoes the change it reports
            log.warning("could not DM %s: %s", user_id, getattr(exc, "response", {}) and exc.response.get("error"))

    async def user_group(self, ref: GroupRef) -> tuple[str, str | None, list[str]]:
        group_id, handle = ref.id, ref.handle
        if group_id is None or handle is None:
            groups = (await self.client.usergroups_list(include_disabled=False)).get("usergroups") or []
            for group in groups:
                if (group_id and group.get("id") == group_id) or (handle and group.get("handle") == handle):
                    group_id, handle = group["id"], group.get("handle")
                    break
            else:
                if group_id is None:
                    raise UserGroupNotFound(f"There is no user group @{handle} in this workspace.")
        try:
            members = (await self.client.usergroups_users_list(usergroup=group_id)).get("users") or []
        except SlackApiError as exc:
            if exc.response.get("error") in ("no_such_subteam", "subteam_not_found"):
                raise UserGroupNotFound(f"There is no user group {ref} in this workspace.") from None
            raise
        return group_id, handle, list(members)

    async def profile(self, user_id: str) -> Requester:
        return await self.directory.requester(user_id)
