"""The App Home: the Home tab (everyone's own status; an overview for admins and owners) and, in the agent
messaging experience, the Messages tab (the agent DM): prompts fitting the person's role each time it opens, and
the channel they are viewing (``app_context_changed``) remembered for a DM that asks about "this channel"."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.requests import Requester
from bot.domain.roles import Right
from bot.services.admin.overview import admin_overview, budget_overview, usage_today
from bot.services.conversation.places import remember_viewing
from bot.slack.directory import LazyRequester
from bot.slack.payloads import asker_id
from bot.slack.render import reply_blocks
from bot.slack.render_answers import agent_prompts

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

PROMPTS_TITLE = "Try one of these:"
CHANNEL_ENTITY = "slack#/types/channel_id"
MESSAGE_ENTITY = "slack#/types/message_context"


def register(runtime: Runtime) -> None:
    home = AppHome(runtime)
    runtime.bolt.event("app_home_opened")(home.on_app_home_opened)
    runtime.bolt.event("app_context_changed")(home.on_app_context_changed)


def channel_in_view(context: object) -> tuple[str | None, str | None]:
    """(channel id, its team) of the most relevant entity of an ``app_context_changed`` context, if any."""
    entities = context.get("entities") if isinstance(context, dict) else None
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, dict):
            continue
        value = entity.get("value")
        if entity.get("type") == MESSAGE_ENTITY and isinstance(value, dict):
            value = value.get("channel_id")
        elif entity.get("type") != CHANNEL_ENTITY:
            continue
        if isinstance(value, str) and value[:1] in ("C", "G"):
            team = entity.get("team_id")
            return value, team if isinstance(team, str) else None
    return None, None


class AppHome:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_app_home_opened(self, event: dict[str, Any], client: AsyncWebClient,
                                 requester: LazyRequester) -> None:
        if event.get("tab") == "messages":
            await self.on_messages_opened(event, client, requester)
            return
        if event.get("tab", "home") != "home":
            return
        blocks = await self.blocks(await requester.resolve())
        await client.views_publish(user_id=requester.user_id, view={"type": "home", "blocks": blocks})

    async def on_messages_opened(self, event: dict[str, Any], client: AsyncWebClient,
                                 requester: LazyRequester) -> None:
        """The agent DM opened: prompts this person's role can use. In ``agent_view`` they belong to the DM, not
        to a thread, so no ``thread_ts`` (Slack ignores a call that has one there)."""
        channel = event.get("channel")
        if not channel:
            return
        prompts = agent_prompts(await self.runtime.chat.access(await requester.resolve()))
        if prompts:
            await client.assistant_threads_setSuggestedPrompts(channel_id=channel, prompts=prompts,
                                                               title=PROMPTS_TITLE)

    async def on_app_context_changed(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        """Remember which channel the person is looking at; nothing is read from it until they ask. The person is
        ``event.user`` or, as Slack's reference prints the event, the one human entry of ``authorizations``."""
        user_id = asker_id(body)
        if user_id is None:
            log.debug("app_context_changed names nobody (no user, no single person in authorizations): ignored")
            return
        channel, team = channel_in_view(event.get("context"))
        await remember_viewing(self.runtime.db, self.runtime.clock, user_id=user_id, channel_id=channel,
                               team_id=team)

    async def blocks(self, requester: Requester) -> list[dict[str, Any]]:
        _, blocks = reply_blocks(await self.runtime.personal.status(requester))
        caller = await self.runtime.admin.caller(requester)
        settings, now = self.runtime.settings, self.runtime.clock()
        tz = settings.budget_zone  # "today" is a day on the budget calendar
        if self.runtime.admin.trusted(caller, Right.MANAGE_ROLES):  # admins and owners: roles, groups, keys
            keys = await self.runtime.keys.list_keys()
            async with self.runtime.db.reads() as session:  # no write lock (SQLite)
                overview = await admin_overview(session, now=now, tz=tz, keys=keys)
                budgets = await budget_overview(session, settings, now=now)
            _, more = reply_blocks(overview)
            blocks += [{"type": "divider"}, *more]
            if budgets is not None:
                blocks += [{"type": "divider"}, *reply_blocks(budgets)[1]]
        elif self.runtime.admin.trusted(caller, Right.VIEW_USAGE):  # billing: usage, cost and budgets only
            async with self.runtime.db.reads() as session:  # no write lock (SQLite)
                _, more = reply_blocks(await usage_today(session, now=now, tz=tz))
                budgets = await budget_overview(session, settings, now=now)
            blocks += [{"type": "divider"}, *more]
            if budgets is not None:
                blocks += [{"type": "divider"}, *reply_blocks(budgets)[1]]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       "`/claude help` for your commands · mention me in a channel or DM me to ask Claude"}]})
        return blocks[:100]
