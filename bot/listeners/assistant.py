"""Slack's assistant panel (Bolt's AsyncAssistant): a greeting and prompts that fit the user's role, then every
message of an assistant thread through the same gate and ChatService as mentions and DMs.

Bolt's assistant middleware takes threaded ``message.im`` events before the app's ``message`` listener sees
them, so a message in an assistant thread is answered here, once (its event id is claimed like any other);
top-level DMs go on to bot/listeners/events.py. The bot's own messages in these threads are dropped by Bolt
(``ignoring_self_assistant_message_events_enabled``, on by default).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.say.async_say import AsyncSay
from slack_bolt.context.set_status.async_set_status import AsyncSetStatus
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import AsyncSetSuggestedPrompts
from slack_bolt.context.set_title.async_set_title import AsyncSetTitle
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import is_assistant_event
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners.events import Conversations, PanelThread, is_human_message
from bot.services.conversation.places import is_panel_thread, remember_panel_thread
from bot.slack.directory import LazyRequester
from bot.slack.render_answers import greeting, suggested_prompts

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

PROMPTS_TITLE = "Try one of these:"


class PanelOnly(AsyncAssistant):
    """Bolt's assistant middleware, asked only about events of the panel's kind: the assistant's thread events and
    messages in direct-message conversations (every one of its listeners matches on nothing else). Every other
    event (a channel message nobody addressed, ``message.channels`` sends them all) went through its four listener
    matchers, each building Bolt's keyword arguments: a third of the CPU such a message cost."""

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        if is_assistant_event(req.body) or is_direct_message_event(req.body):
            return await super().async_process(req=req, resp=resp, next=next)
        await next()
        return None  # as Bolt's own assistant middleware returns after next(): the same response either way


def is_direct_message_event(body: dict[str, Any]) -> bool:
    """A message event (any subtype) in a direct-message conversation. Written here rather than imported: Bolt's
    own helper for this arrived after the lowest slack-bolt that pyproject.toml allows."""
    event = body.get("event")
    return isinstance(event, dict) and event.get("type") == "message" and event.get("channel_type") == "im"


def register(runtime: Runtime, conversations: Conversations) -> None:
    panel = AssistantPanel(runtime, conversations)
    assistant = PanelOnly(logger=logging.getLogger("slack_bolt.assistant"))
    assistant.thread_started(panel.on_thread_started)
    assistant.user_message(panel.on_user_message)
    runtime.bolt.assistant(assistant)


class AssistantPanel:
    def __init__(self, runtime: Runtime, conversations: Conversations) -> None:
        self.runtime = runtime
        self.conversations = conversations

    async def on_thread_started(self, body: dict[str, Any], say: AsyncSay, requester: LazyRequester,
                                set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        thread = body["event"]["assistant_thread"]  # its shape is checked in bot/slack/payloads.py
        # first, and on every delivery: the thread's messages are answered as the panel's from now on
        await remember_panel_thread(self.runtime.db, self.runtime.clock, channel_id=thread["channel_id"],
                                    thread_ts=thread["thread_ts"], user_id=thread["user_id"])
        if not await self.conversations.first_delivery(body):
            return
        asker = await requester.resolve()
        access = await self.runtime.chat.access(asker)
        text, blocks = greeting(access, asker.name)
        await say(text=text, blocks=blocks)
        prompts = suggested_prompts(access)
        if prompts:
            await set_suggested_prompts(prompts=prompts, title=PROMPTS_TITLE)

    async def on_user_message(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                              context: dict[str, Any], set_status: AsyncSetStatus, set_title: AsyncSetTitle) -> None:
        if not is_human_message(event):
            return
        asker = context["requester"]
        # In the panel and in an agent DM alike the thread's root is the person's own message (``parent_user_id``
        # is the asker): a panel thread is one whose assistant_thread_started was recorded.
        if not await is_panel_thread(self.runtime.db, channel_id=event["channel"], thread_ts=event["thread_ts"],
                                     user_id=event["user"]):
            await self.conversations.converse(event, body, client, asker, surface="dm")
            return
        await self.conversations.converse(event, body, client, asker, surface="assistant",
                                          panel=PanelThread(set_status=set_status, set_title=set_title))
