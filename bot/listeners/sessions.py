"""Slack's stop button on an answer's agent session (the ``agent_session_stopped`` event)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.services.conversation.stops import StopOutcome
from bot.slack.sessions import end_agent_session

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

NOT_YOURS = "Only the person who asked, or an admin, can stop this answer."


def register(runtime: Runtime) -> None:
    runtime.bolt.event("agent_session_stopped")(SessionStops(runtime).on_session_stopped)


class SessionStops:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_session_stopped(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """Stop the answer under way in the thread (the process answering it ends its session); with none under
        way, end the session here, so it is never left ``processing``."""
        channel, thread_ts, user_id = event.get("channel"), event.get("thread_ts"), event.get("user")
        if not (isinstance(channel, str) and isinstance(thread_ts, str) and isinstance(user_id, str)):
            log.warning("agent_session_stopped without its channel, thread or user: ignored")
            return
        outcome = await self.runtime.chat.stops.request(channel_id=channel, thread_ts=thread_ts, user_id=user_id)
        if outcome is StopOutcome.NOT_ALLOWED:
            await client.chat_postEphemeral(channel=channel, user=user_id, text=NOT_YOURS, thread_ts=thread_ts)
        elif outcome is StopOutcome.NOTHING:
            await end_agent_session(client, channel, thread_ts)
