"""Relaying an answer into a Slack thread as Claude generates it.

The model's text is buffered as it arrives and a writer task sends it to Slack at a bounded rate, so a slow or
rate-limited Slack never slows the model down and no text is ever dropped:

- the first text is sent at once (one ``chat.startStream`` through slack_sdk's ``chat_stream``), later text is
  appended at most every ``STREAM_INTERVAL`` seconds, spread wider when many answers stream at the same time so
  together they stay inside ``chat.appendStream``'s budget (Tier 4);
- a 429 waits for Retry-After (slack_sdk's retry handler first, then here) and sends the same text again;
- where streaming is not available (``not_allowed``, ``unknown_method``, …) the answer is posted and then
  updated at a bounded rate; a stream that ends early (expired, ``message_not_in_streaming_state``) is continued
  with ``chat.update`` of the same message, which always carries the whole text;
- text beyond one message's limit continues in follow-up messages of the thread, cut at a paragraph, line or
  word, with code fences closed and reopened across the cut;
- the last message carries the feedback buttons (``chat.stopStream`` blocks, or the final ``chat.update``) and,
  when the answer has an agent session, ends it (``chat.stopStream``'s ``session_status``);
- the steps the person waits on (reading the thread and its files, a tool call) go as ``task_update`` chunks of the
  stream, shown as a timeline; an answer with no step shows none (where the answer is posted instead of streamed,
  its steps are not shown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import AnswerNotDelivered
from bot.slack.render_answers import final_answer_blocks
from bot.slack.safe_text import NeutralisingStream

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 11_000  # Slack takes 12,000 characters of markdown per message; room for a closing code fence
STREAM_INTERVAL = 0.8  # seconds between appends to one stream after its first text
UPDATE_INTERVAL = 1.0  # seconds between chat.update calls of one answer on the fallback path
APPENDS_PER_MINUTE = 100  # chat.appendStream is Tier 4: shared by every answer streaming in this process
UPDATES_PER_MINUTE = 50  # chat.update is Tier 3
RATE_LIMIT_PATIENCE = 120.0  # seconds of 429s after which an answer gives up on Slack
STREAMING_MEMORY = 3600.0  # seconds a channel (or the workspace) where streaming failed is written to without it
# Errors that mean "no streaming here", remembered so later answers post at once: per channel, or for the workspace.
CHANNEL_WIDE_ERRORS = frozenset({"not_allowed", "feature_not_enabled", "team_not_allowed", "not_supported"})
WORKSPACE_WIDE_ERRORS = frozenset({"unknown_method", "not_allowed_token_type", "method_deprecated", "missing_scope"})

SLACK_FAULTS = (SlackClientError, aiohttp.ClientError, TimeoutError)


def open_code_fence(text: str) -> str | None:
    """The opening line (e.g. "```python") of a fenced code block left open at the end of ``text``, else None."""
    opening: str | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            opening = None if opening is not None else stripped
    return opening


def split_message(sent: str, text: str, limit: int = MESSAGE_LIMIT) -> tuple[str, str]:
    """Split new ``text`` so that ``sent + head`` fits in one message: (head, rest).

    The cut is at a paragraph, line or word break in the second half of the message when there is one (the
    break itself is dropped). A code block open at the cut is closed in the head and reopened in the rest.
    """
    room = limit - len(sent)
    if len(text) <= room:
        return text, ""
    cut, skip = room, 0
    for separator in ("\n\n", "\n", " "):
        at = text.rfind(separator, 0, room)
        if at >= 0 and len(sent) + at >= limit // 2:
            cut, skip = at, len(separator)
            break
    head, rest = text[:cut], text[cut + skip:]
    fence = open_code_fence(sent + head)
    if fence is not None:
        head += "\n```"
        rest = f"{fence}\n{rest}"
    return head, rest


def slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or f"http_{exc.response.status_code}")
    return type(exc).__name__


def is_rate_limited(exc: BaseException) -> bool:
    return isinstance(exc, SlackApiError) and exc.response is not None and (
        exc.response.status_code == 429 or exc.response.get("error") == "ratelimited")


def retry_after(exc: SlackApiError, default: float = 1.0) -> float:
    try:
        return max(0.0, float(exc.response.headers.get("Retry-After", default)))
    except (TypeError, ValueError, AttributeError):
        return default


class SlackRelay:
    """What the answers of this process share: Slack's method budgets and where streaming does not work."""

    def __init__(self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self.writing = 0  # answers with a writer running
        self._no_streaming: dict[str, float] = {}  # channel id, or "*" for the workspace → until (clock)

    def answer(self, *, channel: str, thread_ts: str, user_id: str, team_id: str | None) -> SlackAnswer:
        return SlackAnswer(self, channel=channel, thread_ts=thread_ts, user_id=user_id, team_id=team_id)

    def streaming_usable(self, channel: str) -> bool:
        now = self.clock()
        return all(self._no_streaming.get(key, 0.0) <= now for key in (channel, "*"))

    def streaming_failed(self, channel: str, error: str) -> None:
        """Streaming could not start; an error saying it is unsupported is remembered for a while."""
        if error not in WORKSPACE_WIDE_ERRORS | CHANNEL_WIDE_ERRORS:
            log.info("could not start a stream in %s (%s); posting this answer instead", channel, error)
            return
        key = "*" if error in WORKSPACE_WIDE_ERRORS else channel
        self._no_streaming[key] = self.clock() + STREAMING_MEMORY
        log.info("streaming unavailable in %s (%s); posting and updating there for a while", key, error)

    def interval(self, *, streaming: bool) -> float:
        """Seconds between two writes of one answer, so that all answers together stay within the budget."""
        per_minute, floor = (APPENDS_PER_MINUTE, STREAM_INTERVAL) if streaming else (UPDATES_PER_MINUTE,
                                                                                      UPDATE_INTERVAL)
        return max(floor, 60.0 * max(1, self.writing) / per_minute)


class SlackAnswer:
    """An AnswerSink that writes into a Slack thread. ``append`` never waits for Slack."""

    def __init__(self, relay: SlackRelay, *, channel: str, thread_ts: str, user_id: str,
                 team_id: str | None) -> None:
        self.relay = relay
        self.client = relay.client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user_id = user_id
        self.team_id = team_id
        self.feedback_blocks: list[dict[str, Any]] | None = None  # set once the request has a record
        self.message_ts: list[str] = []  # every message this answer wrote, in order
        self.session_status: str | None = None  # set when the answer has an agent session: its last stream ends it
        self.session_ended = False  # whether chat.stopStream took session_status (else the caller ends it)
        self._chunks: list[dict[str, Any]] = []  # task updates not yet sent
        self._has_steps = False
        self.streaming = relay.streaming_usable(channel)
        self._received = ""  # text handed over by the model, neutralised, and not yet taken by the writer
        self._safe = NeutralisingStream()  # Claude's text pings nobody (docs/security.md), even split across chunks
        self._has_text = False  # whether any text was handed over at all
        self._more = asyncio.Event()
        self._ended = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._next_write = 0.0  # loop time before which the writer does not write again
        # the message being written
        self._sent = ""  # its text as Slack has it
        self._stream: AsyncChatStream | None = None
        self._updating_ts: str | None = None  # set when it is continued with chat.update instead of a stream
        # Slack work started at admission (the thinking status): it runs beside the call to Claude and is awaited
        # before the first write, so the status never lands after the answer has begun
        self.before_first_write: asyncio.Task[Any] | None = None

    # ------------------------------------------------------------------ AnswerSink

    async def append(self, text: str) -> None:
        self._raise_if_broken()
        self._received += self._safe.feed(text)
        self._has_text = self._has_text or bool(text)
        self._wake()

    def step(self, step_id: str, title: str, status: str, *, details: str | None = None) -> None:
        """Show (or update, by ``step_id``) one step of the answer as a task: ``status`` is pending, in_progress,
        complete or error. ``title`` and ``details`` are the bot's own words."""
        chunk: dict[str, Any] = {"type": "task_update", "id": step_id, "title": title, "status": status}
        if details:
            chunk["details"] = details
        self._chunks.append(chunk)
        self._has_steps = True
        self._wake()

    async def finish(self) -> None:
        self._received += self._safe.flush()
        self._ended.set()
        self._wake()
        assert self._writer is not None
        await self._wait_for_writer()

    async def fail(self, note: str) -> None:
        self.feedback_blocks = None  # a failed answer is not rated
        if self._writer is not None and self._writer.done():  # delivery itself failed: one last plain try
            await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, markdown_text=note)
            return
        self._received += self._safe.feed(("\n\n" if self._has_text else "") + note)
        await self.finish()

    def abandon(self) -> None:
        """Stop writing (the conversation was cancelled); a finished answer is not affected."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    # ------------------------------------------------------------------ writer

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name=f"answer-writer-{self.channel}")
        self._more.set()

    def _raise_if_broken(self) -> None:
        if self._writer is not None and self._writer.done() and not self._writer.cancelled():
            error = self._writer.exception()
            if error is not None:
                raise AnswerNotDelivered(slack_error(error)) from error

    async def _wait_for_writer(self) -> None:
        assert self._writer is not None
        try:
            await asyncio.shield(self._writer)
        except AnswerNotDelivered:
            raise
        except SLACK_FAULTS as exc:
            raise AnswerNotDelivered(slack_error(exc)) from exc

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        self.relay.writing += 1
        if self.before_first_write is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.before_first_write), 5.0)
        try:
            while True:
                await self._more.wait()
                self._more.clear()
                wait = self._next_write - loop.time()
                if wait > 0 and not self._ended.is_set() and len(self._sent) + len(self._received) <= MESSAGE_LIMIT:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._ended.wait(), wait)
                ended = self._ended.is_set()
                text, self._received = self._received, ""
                await self._deliver(text, final=ended)
                self._next_write = loop.time() + self.relay.interval(streaming=self._is_streaming)
                if ended:
                    return
        finally:
            self.relay.writing -= 1

    @property
    def _is_streaming(self) -> bool:
        return self.streaming and self._updating_ts is None

    async def _deliver(self, text: str, *, final: bool) -> None:
        while len(self._sent) + len(text) > MESSAGE_LIMIT:
            head, text = split_message(self._sent, text)
            await self._put(head, close=True, last=False)
        await self._put(text, close=final, last=final)

    async def _put(self, text: str, *, close: bool, last: bool) -> None:
        """Add ``text`` to the current message; ``close`` ends that message, ``last`` ends the answer."""
        if self._is_streaming:
            try:
                await self._put_stream(text, close=close, last=last)
                return
            except SLACK_FAULTS as exc:
                if is_rate_limited(exc):
                    raise
                started = self._stream is not None and self._stream.ts is not None
                if started:
                    assert self._stream is not None and self._stream.ts is not None
                    log.info("stream %s ended early (%s); continuing it with chat.update", self._stream.ts,
                             slack_error(exc))
                    self._updating_ts = self._stream.ts
                else:
                    self.streaming = False
                    self.relay.streaming_failed(self.channel, slack_error(exc))
                self._stream = None
        self._chunks = []  # a posted answer shows no steps
        await self._put_update(text, close=close, last=last)

    async def _put_stream(self, text: str, *, close: bool, last: bool) -> None:
        chunks = list(self._chunks) or None  # a step shown while this call waits goes with the next one
        if self._stream is None:
            if not text and not chunks:
                return
            self._stream = await self.client.chat_stream(
                buffer_size=1, channel=self.channel, thread_ts=self.thread_ts,
                recipient_user_id=self.user_id, recipient_team_id=self.team_id,
                task_display_mode="timeline" if self._has_steps else None,
            )
        stream = self._stream
        # A failed call leaves its text in the stream's buffer: a retry flushes that buffer without adding text (and
        # sends the task updates again: each names its task).
        if close:
            blocks = self.feedback_blocks if last else None
            session = self.session_status if last else None
            await self._patiently(
                lambda: stream.stop(markdown_text=text or None, blocks=blocks, chunks=chunks, session_status=session),
                lambda: stream.stop(blocks=blocks, chunks=chunks, session_status=session))
            self.session_ended = self.session_ended or session is not None
        elif text or chunks:
            await self._patiently(lambda: stream.append(markdown_text=text, chunks=chunks),
                                  lambda: stream.append(markdown_text="", chunks=chunks))
        self._chunks = self._chunks[len(chunks or ()):]
        if stream.ts and stream.ts not in self.message_ts:
            self.message_ts.append(stream.ts)
        self._sent += text
        if close:
            self._stream, self._sent = None, ""

    async def _put_update(self, text: str, *, close: bool, last: bool) -> None:
        body = self._sent + text
        blocks = final_answer_blocks(body, self.feedback_blocks) if last and self.feedback_blocks else None
        content: dict[str, Any] = {"blocks": blocks, "text": body} if blocks else {"markdown_text": body}
        if self._updating_ts is None:
            if not body.strip():
                return
            response = await self._patiently(lambda: self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, **content))
            self._updating_ts = str(response["ts"])
            self.message_ts.append(self._updating_ts)
        elif text or blocks:
            ts = self._updating_ts
            try:
                await self._patiently(lambda: self.client.chat_update(channel=self.channel, ts=ts, **content))
            except SLACK_FAULTS as exc:
                if is_rate_limited(exc):
                    raise
                self._updating_ts, self._sent = None, ""
                if not text.strip():  # every word is already there; only the buttons are missing
                    log.warning("could not add feedback buttons to message %s (%s)", ts, slack_error(exc))
                    return
                log.warning("could not update message %s (%s); the rest follows in a new message", ts,
                            slack_error(exc))
                await self._put_update(text, close=close, last=last)
                return
        self._sent = body
        if close:
            self._updating_ts, self._sent = None, ""

    async def _patiently(self, call: Callable[[], Awaitable[Any]],
                         again: Callable[[], Awaitable[Any]] | None = None) -> Any:
        """Make a Slack call, waiting out 429s (Retry-After) for up to RATE_LIMIT_PATIENCE seconds.

        Written out, not tenacity (the retry helper elsewhere): this runs for every write of every answer, and a
        tenacity loop cost about 0.25 ms of CPU per call on the development machine even when nothing failed."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + RATE_LIMIT_PATIENCE
        while True:
            try:
                return await call()
            except SlackApiError as exc:
                if not is_rate_limited(exc) or loop.time() >= give_up_at:
                    raise
                wait = retry_after(exc)
                log.info("Slack rate limit on %s; sending again in %.1f s", self.channel, wait)
                await asyncio.sleep(wait)
                call = again or call
