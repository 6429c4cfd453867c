"""Message shortcuts: *Ask Claude about this message* (a modal asks the question) and *Summarise this thread*.

Both answer in the asker's DM with the bot (a root message quoting the message, the answer streamed in its
thread), through the whole gate under the rules and budget of the channel the message is in, and only when the
person and the bot are both members of that channel — looked up once the gate's first phase lets the person ask
there. A refusal is one line: ephemeral in that channel, or in the DM when Slack will not show it there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import Turn
from bot.domain.decisions import Admission, Refusal
from bot.domain.mentions import channel_link
from bot.domain.requests import ChatRequest, Requester
from bot.domain.secrets import SecretPolicy, redact
from bot.slack.directory import LazyRequester
from bot.slack.render import refusal_blocks
from bot.slack.render_answers import feedback_blocks
from bot.slack.render_shortcuts import (
    ASK_CALLBACK,
    EMPTY_QUESTION,
    QUESTION_BLOCK,
    QUESTION_VIEW,
    SUMMARISE_CALLBACK,
    QuotedMessage,
    ask_root,
    message_for_claude,
    question_modal,
    shortcut_message,
    submitted_question,
    summary_root,
)
from bot.slack.scheduled_runs import ThreadOnAdmission
from bot.slack.sessions import ACTIVE
from bot.slack.threads import both_members, readable_text, thread_turns

if TYPE_CHECKING:
    from bot.listeners.events import Conversations
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

UsedOn = tuple[str, str, str, str, str]  # the message a shortcut was used on: channel, ts, thread_ts, author, text

SURFACE = "shortcut"
SORRY = ":warning: Something went wrong on my side. Please try again."
NOT_HERE = ("I can only look at messages in channels: use this shortcut on a message in a channel where you and I "
            "are both members.")
TOO_SLOW = "Slack closed the window before it opened. Please use the shortcut again."
SUMMARISE = "Summarise this thread: what was discussed, what was decided, and what is still open."
LATEST = "9999999999.999999"  # later than any message: the whole thread is read


def not_members(channel: str) -> str:
    return (f"I can read {channel_link(channel)} only when you and I are both members of it: invite me there "
            "with `/invite`, or ask in the channel itself.")


def register(runtime: Runtime, conversations: Conversations) -> None:
    shortcuts = MessageShortcuts(runtime, conversations)
    runtime.bolt.message_shortcut(ASK_CALLBACK)(shortcuts.on_ask)
    runtime.bolt.view(QUESTION_VIEW)(shortcuts.on_question)
    runtime.bolt.message_shortcut(SUMMARISE_CALLBACK)(shortcuts.on_summarise)


class DmThreadAnswer(ThreadOnAdmission):
    """Where a shortcut's answer goes: the thread of a root message posted in the asker's DM once the gate admits
    the request. Without one (the DM could not be opened) the answer's note is told as a refusal would be."""

    def __init__(self, tell: Callable[[str], Awaitable[None]]) -> None:
        super().__init__()
        self._tell = tell

    async def fail(self, note: str) -> None:
        if self.answer is None:
            await self._tell(note)
        else:
            await self.answer.fail(note)

    def abandon(self) -> None:
        if self.answer is not None:
            self.answer.abandon()


class MessageShortcuts:
    def __init__(self, runtime: Runtime, conversations: Conversations) -> None:
        self.runtime = runtime
        self.conversations = conversations  # its relay, its thinking status and its one-line replies

    async def on_ask(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                     requester: LazyRequester) -> None:
        await ack()
        await self.used(body, client, requester, self.open_question)

    async def on_summarise(self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                           requester: LazyRequester) -> None:
        await ack()
        await self.used(body, client, requester, self.summarise)

    async def used(self, body: dict[str, Any], client: AsyncWebClient, requester: LazyRequester,
                   run: Callable[[dict[str, Any], AsyncWebClient, Requester, UsedOn], Awaitable[None]]) -> None:
        """A shortcut used on a message: ``run`` with who and which message (channel, ts, thread_ts, author,
        text); a message outside a channel is told apart, a failure told in one line."""
        try:
            found = shortcut_message(body)
            if found is None:
                await self.tell_in_dm(client, requester.user_id, NOT_HERE)
                return
            await run(body, client, await requester.resolve(), found)
        except Exception:
            log.exception("the %s shortcut of %s failed", body.get("callback_id"), requester.user_id)
            await self.tell_safely(client, body, requester.user_id)

    async def open_question(self, body: dict[str, Any], client: AsyncWebClient, asker: Requester,
                            used_on: UsedOn) -> None:
        """Open the question modal, once the person may ask about messages of that channel."""
        channel, ts, thread_ts, author_id, raw = used_on
        user_id = asker.user_id
        if (await self.refused_at_first_phase(client, self.request(asker, "", channel))
                or not await self.both_members(client, channel, user_id)):
            return
        quoted = await self.quoted(channel, ts, thread_ts, author_id, raw)
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=question_modal(quoted))
        except SlackApiError as exc:
            log.info("could not open the question modal for %s: %s", user_id, exc.response.get("error"))
            await self.tell(client, channel, user_id, TOO_SLOW, None)

    async def on_question(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient,
                          requester: LazyRequester) -> None:
        """The modal's question: an empty one is sent back to the modal; else it is answered in the DM."""
        question = submitted_question(view)
        quoted = QuotedMessage.from_metadata(view.get("private_metadata"))
        if not question:
            await ack(response_action="errors", errors={QUESTION_BLOCK: EMPTY_QUESTION})
            return
        await ack()
        user_id = requester.user_id
        try:
            if quoted is None:
                log.warning("a question modal from %s without its message", user_id)
                await self.tell_in_dm(client, user_id, SORRY)
                return
            asker = await requester.resolve()

            async def root(asked: ChatRequest) -> tuple[str, list[dict[str, Any]]]:
                return ask_root(quoted, asked.text)  # the question as screened (SECRET_POLICY=redact)

            await self.answer(client, self.request(asker, question, quoted.channel_id), quoted,
                              lambda: self.asked_about(quoted), root)
        except Exception:
            log.exception("the question of %s about a message failed", user_id)
            await self.tell_in_dm(client, user_id, SORRY)

    async def summarise(self, body: dict[str, Any], client: AsyncWebClient, asker: Requester,
                        used_on: UsedOn) -> None:
        """A summary of the message's thread (its root and replies) in the DM; no modal."""
        channel, ts, thread_ts, author_id, raw = used_on

        async def history() -> list[Turn]:
            return await self.thread_of(client, channel, thread_ts)

        async def root(asked: ChatRequest) -> tuple[str, list[dict[str, Any]]]:  # once admitted: nothing is read
            return summary_root(await self.quoted(channel, ts, thread_ts, author_id, raw))  # for a refusal

        await self.answer(client, self.request(asker, SUMMARISE, channel), QuotedMessage(channel, ts, thread_ts),
                          history, root)

    def request(self, asker: Requester, text: str, channel: str) -> ChatRequest:
        """The request of a shortcut, under the rules and budget of the message's channel. No thread_ts: the answer
        is in the DM, not in that channel (what a record's channel and thread name is where its notes go)."""
        return ChatRequest(requester=asker, text=text, surface=SURFACE, channel_id=channel,
                           channel_name=f"a direct message, about a message in channel <#{channel}>")

    async def refused_at_first_phase(self, client: AsyncWebClient, request: ChatRequest) -> bool:
        """True (the refusal recorded by the gate and told) when the gate's first phase refuses the person in the
        message's channel; nothing beyond the asker is looked up for it."""
        assert request.channel_id is not None
        if await self.runtime.chat.passes_first_phase(request):
            return False
        try:  # the gate's own answer, recorded; let through after all (the channel's rules changed), it stops here
            result = await self.runtime.chat.answer(request, _passed, DmThreadAnswer(_nothing))
        except FirstPhasePassed:
            return False
        if isinstance(result.decision, Refusal):
            await self.tell(client, request.channel_id, request.requester.user_id, *refusal_blocks(result.decision))
            return True
        return False

    async def both_members(self, client: AsyncWebClient, channel: str, user_id: str) -> bool:
        """Whether the person and the bot are both members of ``channel``; if not, the person is told."""
        members = await both_members(client, channel=channel, user_id=user_id)
        if not members:
            await self.tell(client, channel, user_id, not_members(channel), None)
        return members

    async def answer(self, client: AsyncWebClient, request: ChatRequest, where: QuotedMessage,
                     history: Callable[[], Awaitable[list[Turn]]],
                     root: Callable[[ChatRequest], Awaitable[tuple[str, list[dict[str, Any]]]]]) -> None:
        """Through the whole gate; admitted, a root message in the asker's DM (``root`` of the request as screened:
        a credential in it redacted under SECRET_POLICY=redact) and the answer in its thread. The
        channel's members are looked up only if the gate's first phase lets the person ask there (otherwise the gate
        refuses, and records, the request)."""
        user_id = request.requester.user_id
        if (await self.runtime.chat.passes_first_phase(request)
                and not await self.both_members(client, where.channel_id, user_id)):
            return
        sink = DmThreadAnswer(lambda note: self.tell(client, where.channel_id, user_id, note, None))

        async def words() -> str:
            home = await self.runtime.directory.installation()
            return await readable_text(request.text, self.runtime.directory, home.bot_user_id)

        thread: tuple[str, str] | None = None  # the answer's DM thread and its agent session, once admitted
        sessions: list[asyncio.Task[bool]] = []

        async def admitted(admission: Admission, asked: ChatRequest) -> None:
            nonlocal thread
            text, blocks = await root(asked)
            dm = ((await client.conversations_open(users=user_id)).get("channel") or {}).get("id") or user_id
            posted = await client.chat_postMessage(channel=dm, text=text, blocks=blocks, unfurl_links=False)
            thread = (dm, posted["ts"])
            home = await self.runtime.directory.installation()
            answer = self.conversations.relay.answer(channel=dm, thread_ts=posted["ts"], user_id=user_id,
                                                     team_id=request.requester.team_id or home.team_id)
            answer.feedback_blocks = feedback_blocks(admission.record_id)

            async def open_session() -> bool:  # the answer's agent session, as a conversation's (events.py)
                opened = await self.conversations.begin_session(client, dm, posted["ts"], user_id, asked.text, None)
                if opened:
                    answer.session_status = ACTIVE  # the answer's last chat.stopStream ends it
                return opened

            sessions.append(self.runtime.spawn(open_session(), name=f"session-{dm}-{posted['ts']}"))
            answer.before_first_write = sessions[0]
            sink.answer = answer

        try:
            result = await self.runtime.chat.answer(request, history, sink, on_admitted=admitted, words=words)
            if isinstance(result.decision, Refusal):
                await self.tell(client, where.channel_id, user_id, *refusal_blocks(result.decision))
        finally:
            sink.abandon()
            if thread is not None and sessions:
                await asyncio.shield(self.conversations.end_session(client, *thread, sessions[0], sink.answer))

    async def quoted(self, channel: str, ts: str, thread_ts: str, author_id: str, raw: str) -> QuotedMessage:
        """The message as a person reads it (names for mentions, neutralised, credentials redacted), with its
        author's name."""
        directory = self.runtime.directory
        home = await directory.installation()
        author = "" if not author_id else "Claude Gate" if author_id == home.bot_user_id else (
            await directory.display_name(author_id))
        text = await readable_text(raw, directory, None)
        if self.runtime.settings.secret_policy is not SecretPolicy.OFF:  # as in a thread's history: never copied
            text = redact(text)  # into the modal, the DM or Claude's request
        return QuotedMessage(channel, ts, thread_ts, author, text)

    @staticmethod
    async def asked_about(quoted: QuotedMessage) -> list[Turn]:
        return [Turn("user", message_for_claude(quoted))]

    async def thread_of(self, client: AsyncWebClient, channel: str, thread_ts: str) -> list[Turn]:
        """The thread (its root and replies), oldest first, as one text Claude reads before the request."""
        turns = await thread_turns(client, self.runtime.directory, channel=channel, thread_ts=thread_ts,
                                   before_ts=LATEST)
        lines = [f"{'Claude Gate' if turn.role == 'assistant' else turn.speaker or 'someone'}: {turn.text}"
                 for turn in turns if turn.text.strip()]
        return [Turn("user", f"The messages of a thread in channel <#{channel}>, oldest first:\n\n"
                     + ("\n".join(lines) or "(no messages)"))]

    async def tell(self, client: AsyncWebClient, channel: str, user_id: str, text: str,
                   blocks: list[dict[str, Any]] | None) -> None:
        """One line for the person: ephemeral in the message's channel, or in their DM when Slack will not show it
        there (the bot is not a member, or the person is not)."""
        try:
            await self.conversations.tell(client, {"channel": channel, "user": user_id}, text, blocks,
                                          privately=True)
        except SlackApiError as exc:
            log.info("could not tell %s in %s (%s): telling them in the DM", user_id, channel,
                     exc.response.get("error"))
            await self.tell_in_dm(client, user_id, text, blocks)

    async def tell_in_dm(self, client: AsyncWebClient, user_id: str, text: str,
                         blocks: list[dict[str, Any]] | None = None) -> None:
        dm = ((await client.conversations_open(users=user_id)).get("channel") or {}).get("id") or user_id
        await client.chat_postMessage(channel=dm, text=text, blocks=blocks, unfurl_links=False)

    async def tell_safely(self, client: AsyncWebClient, body: dict[str, Any], user_id: str) -> None:
        try:
            channel = (body.get("channel") or {}).get("id")
            if isinstance(channel, str) and channel:
                await self.tell(client, channel, user_id, SORRY, None)
            else:
                await self.tell_in_dm(client, user_id, SORRY)
        except Exception:
            log.exception("could not tell %s about the failure", user_id)


class FirstPhasePassed(Exception):
    """The gate's first phase let a request through that was asked only for its refusal."""


async def _passed() -> list[Turn]:
    raise FirstPhasePassed


async def _nothing(note: str) -> None:
    return None

