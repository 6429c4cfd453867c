"""Calls to Claude through the official SDK. Anthropic's types and errors stop at this module."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anthropic

from bot.domain.errors import ClaudeFailure as ClaudeFailure

log = logging.getLogger(__name__)


@dataclass
class StreamUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    accepted: bool = False  # Anthropic accepted the request and its key: the stream began


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException, *, mid_stream: bool = False) -> ClaudeFailure:
    """Map an SDK exception (or our own timeout) to a ClaudeFailure."""
    if isinstance(exc, ClaudeFailure):
        return exc
    if isinstance(exc, TimeoutError | anthropic.APITimeoutError):
        return ClaudeFailure("timeout", "Claude took too long to answer. Try again, perhaps with a shorter question.")
    if isinstance(exc, anthropic.APIConnectionError):
        if mid_stream:
            return ClaudeFailure("interrupted", "The connection to Claude dropped in the middle of the answer.")
        return ClaudeFailure("connection", "I could not reach Anthropic just now. Try again in a moment.")
    if not isinstance(exc, anthropic.APIStatusError):
        return ClaudeFailure("internal", "Something went wrong on my side while asking Claude. Try again.",
                             detail=type(exc).__name__)
    kind, status, detail = _error_type(exc), exc.status_code, str(exc.message)[:300]
    if status == 200 or mid_stream:  # an SSE `error` event after HTTP 200 (anthropic-sdk-python #1258)
        return ClaudeFailure("interrupted", "Claude's answer was interrupted"
                             + (" (Anthropic is overloaded)." if kind == "overloaded_error" else "."),
                             status=status, detail=kind)
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return ClaudeFailure("key", "The API key for this workspace was refused by Anthropic. An admin has been "
                             "alerted.", status=status, detail=kind)
    if status == 429:
        if "spend_limit" in detail or "spend limit" in detail:
            return ClaudeFailure("spend_limit", "This organisation has reached its Anthropic spend limit. "
                                 "Tell an admin.", status=status, detail=detail)
        wait = _retry_after(exc)
        hint = f" Try again in {round(wait)} s." if wait else " Try again in a minute."
        return ClaudeFailure("rate_limited", "Anthropic is rate-limiting this workspace right now." + hint,
                             status=status, retry_after=wait, detail=kind)
    if status == 529 or kind == "overloaded_error":
        return ClaudeFailure("overloaded", "Claude is overloaded right now. Try again in a minute.", status=status)
    if status == 413 or "prompt is too long" in detail or "too long" in detail:
        return ClaudeFailure("context", "This conversation is too long for the model. Start a new thread.",
                             status=status, detail=detail)
    if status >= 500:
        return ClaudeFailure("server", "Anthropic had an internal error. Try again shortly.", status=status)
    return ClaudeFailure("invalid", f"Anthropic rejected the request: {detail}", status=status, detail=kind)


class ClaudeGateway:
    """One AsyncAnthropic client per API key (they pool connections), streaming text deltas."""

    def __init__(self, *, base_url: str | None = None, timeout: float = 600.0, max_retries: int = 2) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self._clients: dict[str, anthropic.AsyncAnthropic] = {}

    def client_for(self, secret: str) -> anthropic.AsyncAnthropic:
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()
        client = self._clients.get(fingerprint)
        if client is None:
            # The SDK's aiohttp transport: with hundreds of answers streaming at once, httpx's connection pool
            # spends its time matching requests to connections (quadratic); aiohttp's does not.
            client = anthropic.AsyncAnthropic(
                api_key=secret, base_url=self.base_url, max_retries=self.max_retries,
                timeout=self.timeout, http_client=anthropic.DefaultAioHttpClient(timeout=self.timeout),
            )
            self._clients[fingerprint] = client
        return client

    async def stream_text(self, *, secret: str, model: str, max_tokens: int, system: str,
                          messages: list[dict[str, str]], usage: StreamUsage) -> AsyncIterator[str]:
        """Yield text as it arrives; fill ``usage`` as the stream reports it. Raises ClaudeFailure."""
        client = self.client_for(secret)
        started = False
        try:
            # The raw event stream, not ``messages.stream``: that helper also rebuilds the whole message after
            # every event, which we never read; measured here it cost a third more CPU per answer.
            stream = await client.messages.create(model=model, max_tokens=max_tokens, system=system,
                                                  messages=messages, stream=True)  # type: ignore[arg-type]
            async with stream:
                async for event in stream:
                    if event.type == "content_block_delta":
                        if event.delta.type == "text_delta":
                            yield event.delta.text
                    elif event.type == "message_start":
                        started = usage.accepted = True
                        usage.input_tokens = event.message.usage.input_tokens
                        usage.output_tokens = event.message.usage.output_tokens
                    elif event.type == "message_delta":
                        usage.output_tokens = event.usage.output_tokens
                        if event.usage.input_tokens:
                            usage.input_tokens = event.usage.input_tokens
        except anthropic.AnthropicError as exc:
            raise classify(exc, mid_stream=started) from exc

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
