"""The App Home tab: everyone's own status; an overview for admins and owners."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.requests import Requester
from bot.domain.roles import Right
from bot.services.keys import list_keys
from bot.services.overview import admin_overview, usage_today
from bot.slack.directory import LazyRequester
from bot.slack.render import reply_blocks

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    home = AppHome(runtime)
    runtime.bolt.event("app_home_opened")(home.on_app_home_opened)


class AppHome:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_app_home_opened(self, event: dict[str, Any], client: AsyncWebClient,
                                 requester: LazyRequester) -> None:
        if event.get("tab", "home") != "home":
            return
        blocks = await self.blocks(await requester.resolve())
        await client.views_publish(user_id=requester.user_id, view={"type": "home", "blocks": blocks})

    async def blocks(self, requester: Requester) -> list[dict[str, Any]]:
        _, blocks = reply_blocks(await self.runtime.personal.status(requester))
        caller = await self.runtime.admin.caller(requester)
        if self.runtime.admin.trusted(caller, Right.MANAGE_ROLES):  # admins and owners: roles, groups, keys
            keys = await list_keys(self.runtime.sessions, self.runtime.clock, self.runtime.settings)
            async with self.runtime.sessions() as session:
                overview = await admin_overview(session, now=self.runtime.clock(), keys=keys)
            _, more = reply_blocks(overview)
            blocks += [{"type": "divider"}, *more]
        elif self.runtime.admin.trusted(caller, Right.VIEW_USAGE):  # billing: usage and cost only
            async with self.runtime.sessions() as session:
                _, more = reply_blocks(await usage_today(session, now=self.runtime.clock()))
            blocks += [{"type": "divider"}, *more]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       "`/claude help` for your commands · mention me in a channel or DM me to ask Claude"}]})
        return blocks[:100]
