"""Relaying an answer into Slack as it is generated.

Streams with chat.startStream / appendStream / stopStream (slack_sdk's ``chat_stream``); where streaming is
not available it posts a message and updates it at a bounded rate. Text longer than one message continues in
follow-up messages of the same thread, so nothing is ever cut.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 11_000  # Slack caps markdown_text at 12,000 characters per call / message
FLUSH_INTERVAL = 0.8  # seconds between stream appends after the first (chat.appendStream is Tier 4)
UPDATE_INTERVAL = 1.2  # seconds between chat.update calls on the fallback path


def split_for_message(text: str, limit: int = MESSAGE_LIMIT) -> tuple[str, str]:
    """Head that fits in one message (cut at a paragraph or line break when possible) and the rest."""
    if len(text) <= limit:
        return text, ""
    for separator in ("\n\n", "\n", " "):
        cut = text.rfind(separator, 0, limit)
        if cut >= limit // 2:
            return text[:cut], text[cut + len(separator):]
    return text[:limit], text[limit:]


class SlackAnswer:
    """An AnswerSink that writes into a Slack thread."""

    def __init__(self, client: AsyncWebClient, *, channel: str, thread_ts: str, user_id: str,
                 team_id: str | None, streaming: bool = True, final_blocks: list[dict[str, Any]] | None = None,
                 ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user_id = user_id
        self.team_id = team_id
        self.streaming = streaming
        self.final_blocks = final_blocks
        self.message_ts: list[str] = []  # every message this answer wrote, in order
        self._pending = ""  # text not yet sent
        self._current = ""  # text of the message being written
        self._stream: AsyncChatStream | None = None
        self._posted_ts: str | None = None  # fallback message being updated
        self._last_flush = 0.0

    async def append(self, text: str) -> None:
        self._pending += text
        first = not self.message_ts and self._stream is None
        interval = FLUSH_INTERVAL if self.streaming else UPDATE_INTERVAL
        if first or time.monotonic() - self._last_flush >= interval or len(self._pending) >= MESSAGE_LIMIT:
            await self._flush()

    async def finish(self) -> None:
        await self._flush(final=True)

    async def fail(self, note: str) -> None:
        self._pending += ("\n\n" if (self._current or self._pending) else "") + note
        await self._flush(final=True)

    async def _flush(self, *, final: bool = False) -> None:
        self._last_flush = time.monotonic()
        while len(self._current) + len(self._pending) > MESSAGE_LIMIT:
            head, rest = split_for_message(self._current + self._pending)
            self._pending = head[len(self._current):]
            await self._write(close=True, last=False)
            self._pending = rest
        if self._pending or final:
            await self._write(close=final, last=final)

    async def _write(self, *, close: bool, last: bool) -> None:
        """Send pending text to the current message; ``close`` ends that message, ``last`` ends the answer."""
        text, self._pending = self._pending, ""
        if self.streaming:
            try:
                await self._write_stream(text, close=close, last=last)
                return
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                log.info("streaming unavailable (%s); posting and updating instead", error)
                self.streaming = False
                if self._stream is not None and self._stream.ts:
                    self._current = ""  # what was streamed stays in its message; the rest goes in a new one
                self._stream = None
        await self._write_post(text, close=close, last=last)

    async def _write_stream(self, text: str, *, close: bool, last: bool) -> None:
        if self._stream is None:
            if not text and close:
                return
            self._stream = await self.client.chat_stream(
                buffer_size=1, channel=self.channel, thread_ts=self.thread_ts,
                recipient_user_id=self.user_id, recipient_team_id=self.team_id,
            )
        if text and not close:
            await self._stream.append(markdown_text=text)
        if self._stream.ts and self._stream.ts not in self.message_ts:
            self.message_ts.append(self._stream.ts)
        self._current += text
        if close:
            await self._stream.stop(markdown_text=text or None, blocks=self.final_blocks if last else None)
            if self._stream.ts and self._stream.ts not in self.message_ts:
                self.message_ts.append(self._stream.ts)
            self._stream = None
            self._current = ""

    async def _write_post(self, text: str, *, close: bool, last: bool) -> None:
        body = self._current + text
        if not body.strip():
            return
        if self._posted_ts is None:
            response = await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                          markdown_text=body)
            self._posted_ts = response["ts"]
            self.message_ts.append(self._posted_ts)
        elif text or close:
            blocks = self.final_blocks if last else None
            await self.client.chat_update(channel=self.channel, ts=self._posted_ts, markdown_text=body,
                                          **({"blocks": blocks} if blocks else {}))
        self._current = body
        if close:
            self._posted_ts = None
            self._current = ""
