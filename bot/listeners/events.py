"""Conversations: app mentions in channels, direct messages, and (through bot/listeners/assistant) the panel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import Turn
from bot.domain.decisions import Admission, AlreadyTaken, Refusal
from bot.domain.mentions import mention
from bot.domain.requests import ChatRequest, Requester, message_claim, split_model_flag
from bot.services.event_claims import claim_event
from bot.slack.directory import LazyRequester
from bot.slack.render import refusal_blocks
from bot.slack.render_answers import feedback_blocks, question_hint, thread_title
from bot.slack.stream import SlackAnswer, SlackRelay
from bot.slack.threads import readable_text, strip_mention, thread_turns

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)

SORRY = ":warning: Something went wrong on my side while answering. Please try again."
THINKING = "is thinking…"
LOADING_MESSAGES = ["Reading the thread…", "Thinking it through…", "Writing the answer…"]
WHERE = {"mention": "channel <#{channel}>", "dm": "a direct message",
         "assistant": "Slack's assistant panel (a private thread with you)"}


def register(runtime: Runtime) -> Conversations:
    conversations = Conversations(runtime)
    runtime.bolt.event("app_mention")(conversations.on_app_mention)
    runtime.bolt.event("message")(conversations.on_message)
    return conversations


def is_human_message(event: dict[str, Any]) -> bool:
    """Plain messages by people: not the bot's own, not other bots, not edits, deletions or joins."""
    return bool(event.get("user")) and not event.get("bot_id") and not event.get("subtype")


def log_taken(event_id: str) -> None:
    log.info("event %s already taken (Slack retry or another process); not answering again", event_id)


@dataclass(frozen=True)
class PanelThread:
    """Bolt's helpers for a thread of the assistant panel (``set_status`` and ``set_title`` of that thread)."""

    set_status: Callable[..., Awaitable[Any]]
    set_title: Callable[[str], Awaitable[Any]]

    async def thinking(self) -> None:
        await self.set_status(status=THINKING, loading_messages=LOADING_MESSAGES)

    async def name_after(self, question: str) -> None:
        try:
            await self.set_title(thread_title(question))
        except Exception:
            log.warning("could not set the title of an assistant thread", exc_info=True)


class Conversations:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.relay = SlackRelay(runtime.client)

    async def on_app_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                             context: dict[str, Any]) -> None:
        if is_human_message(event):
            await self.converse(event, body, client, context["requester"], surface="mention")

    async def on_message(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: dict[str, Any]) -> None:
        """Direct messages. Threaded ones are taken by the assistant panel's middleware before they get here.

        Anything else costs nothing: the requester in ``context`` is looked up only when used."""
        if event.get("channel_type") != "im" or not is_human_message(event):
            return
        await self.converse(event, body, client, context["requester"], surface="dm")

    async def first_delivery(self, body: dict[str, Any]) -> bool:
        """True once per Slack event id across every process: a retried event is not answered again.

        Conversations need not ask: the gate claims their event in its own transaction.
        """
        event_id = body.get("event_id")
        if not event_id:
            return True
        first = await claim_event(self.runtime.sessions, self.runtime.clock, event_id)
        if not first:
            log_taken(event_id)
        return first

    async def converse(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                       asker: LazyRequester, *, surface: str, panel: PanelThread | None = None) -> None:
        """Answer one message. Its own fallback, not @app.error's: an answer under way must be finished or abandoned,
        and the asker told where they asked."""
        channel, user_id = event["channel"], event["user"]
        thread_ts = event.get("thread_ts") or event["ts"]
        answer: SlackAnswer | None = None
        try:
            requester = await asker.resolve()
            home = await self.runtime.directory.installation()
            # Slack's markup as it came: mentions are looked up only once the gate's first phase lets the asker in
            model, raw = split_model_flag(strip_mention(event.get("text") or "", home.bot_user_id))
            if not raw.strip():
                await self.hint(event, body, client, requester, private=panel is None and surface == "mention")
                return
            request = ChatRequest(requester=requester, text=raw, model=model, surface=surface, channel_id=channel,
                                  channel_name=WHERE[surface].format(channel=channel), thread_ts=thread_ts,
                                  event_id=message_claim(channel, event["ts"]))
            text = raw

            async def words() -> str:
                nonlocal text
                text = await readable_text(raw, self.runtime.directory, home.bot_user_id)
                return text
            answer = self.relay.answer(channel=channel, thread_ts=thread_ts, user_id=user_id,
                                       team_id=requester.team_id or home.team_id)

            async def history() -> list[Turn]:
                if "thread_ts" not in event:
                    return []
                turns = await thread_turns(client, self.runtime.directory, channel=channel, thread_ts=thread_ts,
                                           before_ts=event["ts"])
                if panel is not None and not any(turn.role == "user" and turn.text for turn in turns):
                    self.runtime.spawn(panel.name_after(text), name=f"title-{channel}-{thread_ts}")
                return turns

            async def admitted(admission: Admission) -> None:
                assert answer is not None
                answer.feedback_blocks = feedback_blocks(admission.record_id)
                if panel is not None:
                    await panel.thinking()

            result = await self.runtime.chat.answer(request, history, answer, on_admitted=admitted, words=words)
            if isinstance(result.decision, AlreadyTaken):
                log_taken(result.decision.event_id)
            elif isinstance(result.decision, Refusal):
                fallback, blocks = refusal_blocks(result.decision)
                await self.tell(client, event, fallback, blocks, privately=panel is None)
        except Exception:
            log.exception("conversation in %s for %s failed", channel, user_id)
            try:
                await self.tell(client, event, SORRY, None, privately=panel is None)
            except Exception:
                log.exception("could not tell %s about the failure", user_id)
        finally:
            if answer is not None:
                answer.abandon()

    async def hint(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                   requester: Requester, *, private: bool) -> None:
        """Nothing to ask (only a mention, or only ``--model x``): one line on what to ask and with which models.
        Nothing goes to Claude, nothing is recorded, no rpm slot is used."""
        if not await self.first_delivery(body):
            return
        access = await self.runtime.chat.access(requester)
        home = await self.runtime.directory.installation()
        bot = mention(home.bot_user_id) if private and home.bot_user_id else None
        await self.tell(client, event, question_hint(access, mention=bot), None, privately=private)

    async def tell(self, client: AsyncWebClient, event: dict[str, Any], text: str,
                   blocks: list[dict[str, Any]] | None, *, privately: bool) -> None:
        """An ephemeral line where others could see the thread; a plain reply in the asker's own panel thread."""
        if privately:
            await client.chat_postEphemeral(channel=event["channel"], user=event["user"], text=text, blocks=blocks,
                                            thread_ts=event.get("thread_ts"))
        else:
            await client.chat_postMessage(channel=event["channel"], thread_ts=event.get("thread_ts") or event["ts"],
                                          text=text, blocks=blocks)
