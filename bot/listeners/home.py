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
    from bot.app import ClaudeGate

log = logging.getLogger(__name__)


def register(gate: ClaudeGate) -> None:
    home = AppHome(gate)
    gate.bolt.event("app_home_opened")(home.on_app_home_opened)


class AppHome:
    def __init__(self, gate: ClaudeGate) -> None:
        self.gate = gate

    async def on_app_home_opened(self, event: dict[str, Any], client: AsyncWebClient,
                                 requester: LazyRequester) -> None:
        if event.get("tab", "home") != "home":
            return
        blocks = await self.blocks(await requester.resolve())
        await client.views_publish(user_id=requester.user_id, view={"type": "home", "blocks": blocks})

    async def blocks(self, requester: Requester) -> list[dict[str, Any]]:
        _, blocks = reply_blocks(await self.gate.personal.status(requester))
        caller = await self.gate.admin.caller(requester)
        if self.gate.admin.trusted(caller, Right.MANAGE_ROLES):  # admins and owners: roles, groups, keys
            keys = await list_keys(self.gate.sessions, self.gate.clock, self.gate.settings)
            async with self.gate.sessions() as session:
                overview = await admin_overview(session, now=self.gate.clock(), keys=keys)
            _, more = reply_blocks(overview)
            blocks += [{"type": "divider"}, *more]
        elif self.gate.admin.trusted(caller, Right.VIEW_USAGE):  # billing: usage and cost only
            async with self.gate.sessions() as session:
                _, more = reply_blocks(await usage_today(session, now=self.gate.clock()))
            blocks += [{"type": "divider"}, *more]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       "`/claude help` for your commands · mention me in a channel or DM me to ask Claude"}]})
        return blocks[:100]
