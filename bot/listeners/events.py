"""Conversations: app mentions in channels, direct messages, and (through bot/listeners/assistant) the panel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import Turn
from bot.domain.decisions import Admission, AlreadyTaken, Refusal, RefusalReason
from bot.domain.mentions import channel_link, mention
from bot.domain.requests import (
    CHANNEL_SURFACES,
    ChatRequest,
    Requester,
    asks_about_viewed_channel,
    message_claim,
    split_model_flag,
)
from bot.services.conversation.claims import claim_event
from bot.services.conversation.places import asked_in_thread, viewed_channel
from bot.slack.directory import LazyRequester
from bot.slack.files import FileFetcher, file_hosts
from bot.slack.render import refusal_blocks
from bot.slack.render_answers import feedback_blocks, question_hint, reading_step, thread_title
from bot.slack.sessions import ACTIVE, LOADING_MESSAGES, THINKING, AgentSessions, end_agent_session
from bot.slack.stream import SlackAnswer, SlackRelay
from bot.slack.threads import both_members, channel_digest, readable_text, strip_mention, thread_turns

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SORRY = ":warning: Something went wrong on my side while answering. Please try again."
WHERE = {"mention": "channel <#{channel}>", "follow_up": "channel <#{channel}>", "dm": "a direct message",
         "assistant": "Slack's assistant panel (a private thread with you)"}
SPOKEN_SUBTYPES = ("file_share", "thread_broadcast")  # still a person speaking (with files, or also
# sent to the channel); every other subtype is an edit, a deletion, a join…
CHANNEL_TYPES = ("channel", "group")  # message.channels / message.groups


def register(runtime: Runtime) -> Conversations:
    conversations = Conversations(runtime)
    runtime.bolt.event("app_mention")(conversations.on_app_mention)
    runtime.bolt.event("message")(conversations.on_message)
    return conversations


def is_human_message(event: dict[str, Any]) -> bool:
    """Messages by people: not the bot's own, not other bots, not edits, deletions or joins."""
    subtype = event.get("subtype")
    return bool(event.get("user")) and not event.get("bot_id") and (not subtype or subtype in SPOKEN_SUBTYPES)


def may_be_follow_up(event: dict[str, Any]) -> bool:
    """Whether a channel message could be a follow-up in a thread the bot answered, judged by its shape alone
    (no Slack or database call): a reply in a thread, by a person, mentioning nobody — a message that mentions
    the bot also arrives as ``app_mention`` and is answered there; one that mentions someone else is for them."""
    thread_ts, text = event.get("thread_ts"), event.get("text") or ""
    if not thread_ts or thread_ts == event.get("ts") or event.get("channel_type") not in CHANNEL_TYPES:
        return False  # (tuples, not sets: a field of a malformed event may be unhashable)
    return isinstance(text, str) and is_human_message(event) and "<@" not in text and "<!" not in text


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
        self.sessions = AgentSessions()
        self.follow_ups = runtime.settings.thread_follow_ups
        token = runtime.settings.slack_bot_token
        self.files = FileFetcher(runtime.client, token.get_secret_value() if token else "",
                                 hosts=file_hosts(runtime.settings.slack_api_url))

    async def on_app_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                             context: dict[str, Any]) -> None:
        if is_human_message(event):
            await self.converse(event, body, client, context["requester"], surface="mention")

    async def on_message(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient,
                         context: dict[str, Any]) -> None:
        """Direct messages (threaded ones are taken by Bolt's assistant middleware before they get here, and
        handed back by bot/listeners/assistant.py), and follow-ups in channel threads the bot answered.

        Every message of every channel the bot is in arrives here: most are ruled out by their shape alone (before
        this, in bot/listeners/middleware.py), and the requester in ``context`` is looked up only when used."""
        if event.get("channel_type") == "im":
            if is_human_message(event):
                await self.converse(event, body, client, context["requester"], surface="dm")
            return
        if not self.follow_ups or not may_be_follow_up(event):
            return
        if await asked_in_thread(self.runtime.db, channel_id=event["channel"], thread_ts=event["thread_ts"],
                                 user_id=event["user"]):
            await self.converse(event, body, client, context["requester"], surface="follow_up")

    async def first_delivery(self, body: dict[str, Any]) -> bool:
        """True once per Slack event id across every process: a retried event is not answered again.

        Conversations need not ask: the gate claims their event in its own transaction.
        """
        event_id = body.get("event_id")
        if not event_id:
            return True
        first = await claim_event(self.runtime.db, self.runtime.clock, event_id)
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
        session: asyncio.Task[bool] | None = None  # the answer's agent session, once admitted
        try:
            requester = await asker.resolve()
            home = await self.runtime.directory.installation()
            # Slack's markup as it came: mentions are looked up only once the gate's first phase lets the asker in
            model, raw = split_model_flag(strip_mention(event.get("text") or "", home.bot_user_id))
            shared: list[Any] = event["files"] if isinstance(event.get("files"), list) else []
            if not raw.strip() and shared:
                raw = "Please look at the attached files."
            if not raw.strip():
                await self.hint(event, body, client, requester, private=surface in CHANNEL_SURFACES)
                return
            request = ChatRequest(requester=requester, text=raw, model=model, surface=surface, channel_id=channel,
                                  channel_name=WHERE[surface].format(channel=channel), thread_ts=thread_ts,
                                  event_id=message_claim(channel, event["ts"]))
            about: str | None = None  # a DM asking about the channel in view: that channel's rules apply
            # someone who may not ask at all is refused by the gate before any channel is looked at
            if (surface == "dm" and asks_about_viewed_channel(raw)
                    and (await self.runtime.chat.access(requester)).can_chat):
                about, problem = await self.channel_asked_about(client, request)
                if about is None:
                    if await self.first_delivery(body):
                        await self.tell(client, event, problem, None, privately=False)
                    return
                request = replace(request, channel_id=about,
                                  channel_name=f"a direct message, about channel <#{about}>")

            async def words() -> str:
                return await readable_text(raw, self.runtime.directory, home.bot_user_id)

            answer = self.relay.answer(channel=channel, thread_ts=thread_ts, user_id=user_id,
                                       team_id=requester.team_id or home.team_id)

            untitled = False  # the panel thread's first question: it names the thread once admitted
            read: list[int] = [0, 0]  # earlier messages of the thread, files: the answer's first step

            async def history() -> list[Turn]:
                nonlocal untitled
                turns: list[Turn] = []
                if about is not None:
                    digest = await channel_digest(client, self.runtime.directory, about)
                    turns.append(Turn("user", f"The latest messages of channel <#{about}>, oldest first:\n\n"
                                      f"{digest or '(no messages)'}", requester.name))
                earlier: list[Any] = []  # files shared earlier in the thread, oldest first
                if "thread_ts" in event:
                    turns += await thread_turns(client, self.runtime.directory, channel=channel, thread_ts=thread_ts,
                                                before_ts=event["ts"], files=earlier)
                read[0] = len(turns)
                if shared or earlier:
                    files = await self.files_of(client, event, [*shared, *reversed(earlier)], screened,
                                                requester.name, private=surface in CHANNEL_SURFACES)
                    read[1] = sum(len(turn.blocks) for turn in files)
                    turns += files
                untitled = panel is not None and not any(turn.role == "user" and turn.text for turn in turns)
                return turns

            admissions: list[Admission] = []
            screened: list[tuple[str, bool]] = []  # (role, files allowed), known before the history is fetched

            async def admitted(admission: Admission, asked: ChatRequest) -> None:
                nonlocal session
                assert answer is not None
                admissions.append(admission)
                if panel is not None and untitled:  # a refused message (a blocked secret…) never names a thread;
                    # an admitted one by its screened text, redacted under SECRET_POLICY=redact
                    self.runtime.spawn(panel.name_after(asked.text), name=f"title-{channel}-{thread_ts}")
                answer.feedback_blocks = feedback_blocks(admission.record_id)
                step = reading_step(*read)
                if step is not None:
                    answer.step("context", step, "complete")
                session = self.start_session(client, answer, user_id=user_id, question=asked.text, panel=panel)

            result = await self.runtime.chat.answer(request, history, answer, on_admitted=admitted, words=words,
                                                    on_screened=lambda role, files: screened.append((role, files)))
            if isinstance(result.decision, AlreadyTaken):
                log_taken(result.decision.event_id)
            elif isinstance(result.decision, Refusal):
                if surface == "follow_up" and result.decision.reason is RefusalReason.CHANNEL_OFF:
                    # a channel switched off (docs/channels-and-data.md): a mention there is told who switched
                    # Claude off; a thread reply gets nothing
                    return
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
            if session is not None:
                await asyncio.shield(self.end_session(client, channel, thread_ts, session, answer))

    def start_session(self, client: AsyncWebClient, answer: SlackAnswer, *, user_id: str, question: str,
                      panel: PanelThread | None = None) -> asyncio.Task[bool]:
        """Open the agent session of an admitted answer beside the call to Claude, not before it (the answer
        awaits it before its first write); end it with :meth:`end_session` whatever happens."""
        async def open_session() -> bool:
            opened = await self.begin_session(client, answer.channel, answer.thread_ts, user_id, question, panel)
            if opened:
                answer.session_status = ACTIVE  # the answer's last chat.stopStream ends it
            return opened

        session = self.runtime.spawn(open_session(), name=f"session-{answer.channel}-{answer.thread_ts}")
        answer.before_first_write = session
        return session

    async def begin_session(self, client: AsyncWebClient, channel: str, thread_ts: str, user_id: str, question: str,
                            panel: PanelThread | None) -> bool:
        """The answer's agent session in ``processing``, titled after the (screened) question; where sessions are
        not available, the thinking status. True when a session was opened."""
        try:
            return await self.sessions.begin(client, channel=channel, thread_ts=thread_ts, asker=user_id,
                                             title=thread_title(question),
                                             thinking=panel.thinking if panel is not None else None)
        except Exception:
            log.warning("could not show the answer's status in %s", channel, exc_info=True)
            return False

    @staticmethod
    async def end_session(client: AsyncWebClient, channel: str, thread_ts: str, session: asyncio.Task[bool],
                          answer: SlackAnswer | None) -> None:
        """Never left ``processing``: unless the answer's last ``chat.stopStream`` ended it, one more call."""
        try:
            opened = await session
        except (asyncio.CancelledError, Exception):  # it may have been opened all the same
            opened = True
        if opened and not (answer is not None and answer.session_ended):
            await end_agent_session(client, channel, thread_ts)

    async def files_of(self, client: AsyncWebClient, event: dict[str, Any], objects: list[Any],
                       screened: list[tuple[str, bool]], speaker: str, *, private: bool) -> list[Turn]:
        """The files of a question (its own, then earlier ones of the thread, newest first) as a user turn of
        content blocks; one line to the asker for each file that is not sent."""
        role, allowed = screened[0] if screened else ("", True)
        selection = await self.files.select(objects, allowed=allowed, role=role)
        if selection.skipped:
            try:
                await self.tell(client, event, selection.notice(), None, privately=private)
            except Exception:
                log.warning("could not tell %s which files were not sent", event.get("user"), exc_info=True)
        return ([Turn("user", "", speaker, blocks=tuple(selection.blocks), pdf_pages=selection.pdf_pages)]
                if selection.blocks else [])

    async def channel_asked_about(self, client: AsyncWebClient, request: ChatRequest) -> tuple[str | None, str]:
        """The channel a DM's "this channel" means (the one in view, if the person and the bot are both members
        of it), else (None, the one line saying why not). Its members are looked up only if the gate's first phase
        lets the request through under that channel's rules: otherwise the gate refuses it there (switched off,
        roles, model) with nothing about the channel looked up."""
        user_id = request.requester.user_id
        viewed = await viewed_channel(self.runtime.db, user_id)
        if viewed is None:
            return None, ("I do not know which channel you mean: open it in Slack with this conversation beside "
                          "it, then ask again.")
        if not await self.runtime.chat.passes_first_phase(replace(request, channel_id=viewed)):
            return viewed, ""
        try:
            members = await both_members(client, channel=viewed, user_id=user_id)
        except SlackApiError as exc:
            log.info("could not check the members of %s: %s", viewed, exc.response.get("error"))
            members = False
        if not members:
            return None, (f"I can read {channel_link(viewed)} only when you and I are both members of it: invite "
                          "me there with `/invite`, or ask in the channel itself.")
        return viewed, ""

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
