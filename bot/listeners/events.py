"""Conversations: app mentions in channels and direct messages."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import Turn
from bot.domain.decisions import Refusal
from bot.domain.requests import ChatRequest, split_model_flag
from bot.services.events import claim_event
from bot.slack.render import refusal_blocks
from bot.slack.stream import SlackAnswer
from bot.slack.threads import strip_mention, thread_turns

if TYPE_CHECKING:
    from bot.app import ClaudeGate

log = logging.getLogger(__name__)

SORRY = ":warning: Something went wrong on my side while answering. Please try again."


def register(gate: ClaudeGate) -> None:
    conversations = Conversations(gate)
    gate.bolt.event("app_mention")(conversations.on_app_mention)
    gate.bolt.event("message")(conversations.on_message)


def is_human_message(event: dict[str, Any]) -> bool:
    """Plain messages by people: not the bot's own, not other bots, not edits, deletions or joins."""
    return bool(event.get("user")) and not event.get("bot_id") and not event.get("subtype")


class Conversations:
    def __init__(self, gate: ClaudeGate) -> None:
        self.gate = gate

    async def on_app_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if is_human_message(event) and await self._first_delivery(body):
            await self.converse(event, client, surface="mention")

    async def on_message(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("channel_type") != "im" or not is_human_message(event):
            return
        if await self._first_delivery(body):
            await self.converse(event, client, surface="dm")

    async def _first_delivery(self, body: dict[str, Any]) -> bool:
        event_id = body.get("event_id")
        if not event_id:
            return True
        first = await claim_event(self.gate.sessions, self.gate.clock, event_id)
        if not first:
            log.info("event %s already taken (Slack retry or another process); not answering again", event_id)
        return first

    async def converse(self, event: dict[str, Any], client: AsyncWebClient, *, surface: str) -> None:
        channel, user_id = event["channel"], event["user"]
        thread_ts = event.get("thread_ts") or event["ts"]
        try:
            requester = await self.gate.directory.requester(user_id)
            home = await self.gate.directory.installation()
            model, text = split_model_flag(strip_mention(event.get("text") or "", home.bot_user_id))
            request = ChatRequest(requester=requester, text=text, model=model, surface=surface, channel_id=channel,
                                  channel_name="a direct message" if surface == "dm" else f"channel <#{channel}>",
                                  thread_ts=thread_ts)

            async def history() -> list[Turn]:
                if "thread_ts" not in event:
                    return []
                return await thread_turns(client, self.gate.directory, channel=channel, thread_ts=thread_ts,
                                          before_ts=event["ts"])

            sink = SlackAnswer(client, channel=channel, thread_ts=thread_ts, user_id=user_id,
                               team_id=requester.team_id or home.team_id)
            result = await self.gate.chat.answer(request, history, sink)
            if isinstance(result.decision, Refusal):
                fallback, blocks = refusal_blocks(result.decision)
                await client.chat_postEphemeral(channel=channel, user=user_id, text=fallback, blocks=blocks,
                                                thread_ts=event.get("thread_ts"))
        except Exception:
            log.exception("conversation in %s for %s failed", channel, user_id)
            try:
                await client.chat_postEphemeral(channel=channel, user=user_id, text=SORRY,
                                                thread_ts=event.get("thread_ts"))
            except Exception:
                log.exception("could not tell %s about the failure", user_id)
