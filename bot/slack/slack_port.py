"""The Slack side of the Workspace port (bot/services/ports.py): messages, DMs, files, user groups, profiles."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.commands import GroupRef
from bot.domain.requests import Requester
from bot.services.ports import ChannelNotFound, Message, SlackCallFailed, UserGroupNotFound
from bot.slack.answers import answer_blocks
from bot.slack.directory import UserDirectory
from bot.slack.sessions import end_agent_session

log = logging.getLogger(__name__)


def rendered(message: Message) -> dict[str, Any]:
    """chat.postMessage arguments for a message: text alone, or an Answer's fallback text and blocks."""
    if isinstance(message, str):
        return {"text": message}
    text, blocks = answer_blocks(message)
    return {"text": text, "blocks": blocks}


@asynccontextmanager
async def slack_call() -> AsyncIterator[None]:
    """Slack's refusals and network failures as SlackCallFailed (its error code, or the kind of failure)."""
    try:
        yield
    except SlackApiError as exc:
        raise SlackCallFailed(str(exc.response.get("error") or "error")) from exc
    except (OSError, TimeoutError, SlackRequestError) as exc:
        raise SlackCallFailed(type(exc).__name__) from exc


NOT_CONNECTED = "not_connected"  # SlackCallFailed's reason when this process has no Slack (`chat` without a token)


class SlackApiPort:
    def __init__(self, client: AsyncWebClient, directory: UserDirectory | None = None, *,
                 connected: bool = True) -> None:
        self.client = client
        self.directory = directory or UserDirectory(client)
        # False in a shell without SLACK_BOT_TOKEN: nothing is sent, and no call waits on Slack or retries
        self.connected = connected

    async def deliver(self, to: str, message: Message, *, thread_ts: str | None = None) -> str | None:
        if not self.connected:
            raise SlackCallFailed(NOT_CONNECTED)
        async with slack_call():
            response = await self.client.chat_postMessage(channel=to, thread_ts=thread_ts, unfurl_links=False,
                                                          **rendered(message))
        return response.get("ts")

    async def send_dm(self, user_id: str, message: Message) -> None:
        try:
            await self.deliver(user_id, message)
        except SlackCallFailed as exc:  # a DM that cannot be delivered never undoes the change it reports
            log.log(logging.DEBUG if exc.reason == NOT_CONNECTED else logging.WARNING, "could not DM %s: %s",
                    user_id, exc.reason)

    async def post(self, channel: str, message: Message, thread_ts: str | None = None) -> None:
        try:
            await self.deliver(channel, message, thread_ts=thread_ts)
        except SlackCallFailed as exc:  # a notice that cannot be delivered never breaks what it reports on
            log.log(logging.DEBUG if exc.reason == NOT_CONNECTED else logging.WARNING, "could not post in %s: %s",
                    channel, exc.reason)

    async def end_session(self, channel: str, thread_ts: str) -> None:
        if self.connected:
            await end_agent_session(self.client, channel, thread_ts)

    async def upload_file(self, channel: str, *, filename: str, content: bytes, title: str | None = None,
                          comment: str | None = None, thread_ts: str | None = None) -> str:
        where = f"<#{channel}>"
        async with slack_call():
            if channel[:1] in ("U", "W"):  # a person: their DM with the bot (files are shared in conversations)
                opened = await self.client.conversations_open(users=channel)
                channel = (opened.get("channel") or {}).get("id") or channel
                where = "your DM with me"
            await self.client.files_upload_v2(channel=channel, filename=filename, content=content,
                                              title=title or filename, initial_comment=comment, thread_ts=thread_ts)
        return f"{where} as `{filename}`"

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

    async def email_of(self, user_id: str) -> str | None:
        async with slack_call():
            response = await self.client.users_info(user=user_id)
        email = ((response.get("user") or {}).get("profile") or {}).get("email")
        return str(email) if email else None

    async def channel_named(self, name: str) -> str | None:
        """The ID of the unarchived channel (public, or private with the bot in it) called ``name``; None if none."""
        cursor = None
        while True:
            async with slack_call():
                response = await self.client.conversations_list(types="public_channel,private_channel",
                                                                exclude_archived=True, limit=1000, cursor=cursor)
            for channel in response.get("channels") or []:
                if channel.get("name") == name:
                    return str(channel["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    async def user_by_email(self, email: str) -> str | None:
        async with slack_call():
            response = await self.client.users_lookupByEmail(email=email)
        return (response.get("user") or {}).get("id")

    async def channel_name(self, channel_id: str) -> str | None:
        try:
            channel = (await self.client.conversations_info(channel=channel_id)).get("channel") or {}
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in ("channel_not_found", "not_in_channel"):
                raise ChannelNotFound(channel_id) from None
            if error == "missing_scope":  # an app installed before channels:read: the setting is kept unchecked
                log.warning("cannot check channel %s: the app lacks channels:read/groups:read", channel_id)
                return None
            raise
        if channel.get("is_im") or channel.get("is_mpim"):
            raise ChannelNotFound(channel_id)
        return channel.get("name")
