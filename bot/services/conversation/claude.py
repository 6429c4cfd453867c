"""Calls to Claude through the official SDK. Anthropic's types and errors stop at this module.

The SDK is imported on first use, not with this module: ``import anthropic`` is about 60 % of ``import bot.app``
(``python -X importtime``), and `serve` answers /healthz without it. `serve` starts loading it in a thread as soon
as it listens (ClaudeGateway.preload); an answer that comes before it has loaded waits for it (ClaudeGateway.ready).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from bot.domain.errors import ClaudeFailure as ClaudeFailure
from bot.domain.estimate import input_tokens_bound, text_tokens_bound

if TYPE_CHECKING:
    import anthropic
    from anthropic import AsyncStream

log = logging.getLogger(__name__)

_SDK: ModuleType | None = None  # the anthropic package once fully imported


def sdk() -> ModuleType:
    """The Anthropic SDK, imported here if nothing loaded it before (scripts, the CLI's one-off calls)."""
    global _SDK
    if _SDK is None:
        _SDK = importlib.import_module("anthropic")
    return _SDK


async def load_sdk() -> ModuleType:
    """The SDK, imported in a thread so the event loop keeps answering (acks, /healthz) meanwhile."""
    global _SDK
    if _SDK is None:
        _SDK = await asyncio.to_thread(importlib.import_module, "anthropic")
    return _SDK


@dataclass
class StreamUsage:
    input_tokens: int = 0  # not cached (Anthropic reports cache writes and reads apart)
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    accepted: bool = False  # Anthropic accepted the request and its key: the stream began
    final: bool = False  # message_delta gave the final output count (else only what message_start said)


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    try:
        return float(exc.response.headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None


def _is_transport_error(exc: BaseException) -> bool:
    """A connection that broke under the SDK while a stream was read: the SDK wraps only errors of sending, so a
    drop mid-stream surfaces as the HTTP library's own error (httpx's TransportError, aiohttp's ClientError)."""
    if isinstance(exc, ConnectionError):
        return True
    return any(cls.__name__ in ("TransportError", "ClientError") and cls.__module__.split(".")[0] in
               ("httpx", "httpx2", "aiohttp") for cls in type(exc).__mro__)


def classify(exc: BaseException, *, mid_stream: bool = False) -> ClaudeFailure:
    """Map an SDK exception (or our own timeout) to a ClaudeFailure. Before the SDK has loaded, nothing can be one of
    its exceptions, and this does not wait for it (an answer timing out while the SDK loads)."""
    if isinstance(exc, ClaudeFailure):
        return exc
    anthropic = _SDK
    if isinstance(exc, TimeoutError) or (anthropic is not None and isinstance(exc, anthropic.APITimeoutError)):
        return ClaudeFailure("timeout", "Claude took too long to answer. Try again, perhaps with a shorter question.")
    if anthropic is None:  # no request has gone out: nothing here came from Anthropic or its connection
        return ClaudeFailure("internal", "Something went wrong on my side while asking Claude. Try again.",
                             detail=type(exc).__name__)
    if isinstance(exc, anthropic.APIConnectionError) or _is_transport_error(exc):
        if mid_stream:
            return ClaudeFailure("interrupted", "Claude's answer was interrupted (the connection to Anthropic "
                                 "dropped).", detail=type(exc).__name__)
        return ClaudeFailure("connection", "I could not reach Anthropic just now. Try again in a moment.",
                             detail=type(exc).__name__)
    if not isinstance(exc, anthropic.APIStatusError):
        return ClaudeFailure("internal", "Something went wrong on my side while asking Claude. Try again.",
                             detail=type(exc).__name__)
    failure = _classify_status(exc, mid_stream=mid_stream)
    advice = exc.response.headers.get("x-should-retry", "").lower() if exc.response is not None else ""
    if advice in ("true", "false"):
        failure.should_retry = advice == "true"
    return failure


def _classify_status(exc: anthropic.APIStatusError, *, mid_stream: bool) -> ClaudeFailure:
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
    # Anthropic's own words (``Error code: 400 - {…}``) go to the log, never to Slack: they may quote the request
    return ClaudeFailure("invalid", "Anthropic could not take this request. Try asking in other words, or start a "
                         "new thread.", status=status, detail=f"{kind}: {detail}")


class ClaudeStream:
    """An answer Anthropic has accepted (HTTP 200): its text deltas, with ``usage`` filled as the stream reports it."""

    def __init__(self, stream: anthropic.AsyncStream[Any], usage: StreamUsage) -> None:
        self._stream = stream
        self.usage = usage

    async def text(self) -> AsyncGenerator[str, None]:
        """Yield text as it arrives. Raises ClaudeFailure (``interrupted``: the stream broke after HTTP 200)."""
        usage = self.usage
        try:
            async with self._stream as stream:
                async for event in stream:
                    if event.type == "content_block_delta":
                        if event.delta.type == "text_delta":
                            yield event.delta.text
                    elif event.type == "message_start":
                        usage.accepted = True
                        start = event.message.usage
                        usage.input_tokens = start.input_tokens
                        usage.output_tokens = start.output_tokens
                        usage.cache_write_tokens = start.cache_creation_input_tokens or 0
                        usage.cache_read_tokens = start.cache_read_input_tokens or 0
                    elif event.type == "message_delta":
                        usage.output_tokens = event.usage.output_tokens
                        usage.final = True
                        if event.usage.input_tokens:
                            usage.input_tokens = event.usage.input_tokens
                        if event.usage.cache_creation_input_tokens:
                            usage.cache_write_tokens = event.usage.cache_creation_input_tokens
                        if event.usage.cache_read_input_tokens:
                            usage.cache_read_tokens = event.usage.cache_read_input_tokens
        except Exception as exc:
            if isinstance(exc, sdk().AnthropicError) or _is_transport_error(exc):
                raise classify(exc, mid_stream=True) from exc
            raise


CACHEABLE_MINIMUM_TOKENS = 1_024  # no model caches a shorter prefix (Haiku 4.5 and Opus 4.5+: 4,096)
EPHEMERAL = {"type": "ephemeral"}


def with_cache_breakpoints(system: str, messages: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """Prompt caching: a ``cache_control`` breakpoint on the system prompt and on the conversation's last turn, so
    the next turn of the thread reads the system prompt and the history from Anthropic's cache.

    Prefixes below every model's minimum are never cached (Anthropic ignores the marker), so a prompt whose upper
    bound is below it is sent as it is: plain strings, no breakpoint.
    """
    system_bound = text_tokens_bound(system)
    total = input_tokens_bound(system, messages)
    cached_system: Any = system
    if system_bound >= CACHEABLE_MINIMUM_TOKENS:
        cached_system = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    if total < CACHEABLE_MINIMUM_TOKENS or not messages:
        return cached_system, list(messages)
    *history, last = messages
    content = last["content"]
    if isinstance(content, list):  # files and text as blocks: the breakpoint goes on the last of them
        blocks = [*content[:-1], {**content[-1], "cache_control": EPHEMERAL}] if content else content
    else:
        blocks = [{"type": "text", "text": content, "cache_control": EPHEMERAL}]
    return cached_system, [*history, {"role": last["role"], "content": blocks}]


class ClaudeGateway:
    """One AsyncAnthropic client per API key (they pool connections), streaming text deltas.

    The SDK never retries (``max_retries=0``): a retry must re-check its key first (a revoke may have come in
    between), so ChatService owns it.
    """

    def __init__(self, *, base_url: str | None = None, timeout: float = 600.0, max_retries: int = 0) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self._clients: dict[str, anthropic.AsyncAnthropic] = {}
        self._loading: asyncio.Future[ModuleType] | None = None

    def preload(self) -> asyncio.Future[ModuleType]:
        """Start importing the SDK in a thread (`serve`, once it listens); the first answer awaits the same import."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(load_sdk())
        return self._loading

    async def ready(self) -> ModuleType:
        if _SDK is not None:
            return _SDK
        return await asyncio.shield(self.preload())

    def client_for(self, secret: str) -> anthropic.AsyncAnthropic:
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()
        client = self._clients.get(fingerprint)
        if client is None:
            # The SDK's aiohttp transport: with hundreds of answers streaming at once, httpx's connection pool
            # spends its time matching requests to connections (quadratic); aiohttp's does not.
            anthropic = sdk()
            client = anthropic.AsyncAnthropic(
                api_key=secret, base_url=self.base_url, max_retries=self.max_retries,
                timeout=self.timeout, http_client=anthropic.DefaultAioHttpClient(timeout=self.timeout),
            )
            self._clients[fingerprint] = client
        return client

    async def open_stream(self, *, secret: str, model: str, max_tokens: int, system: str,
                          messages: list[dict[str, str]], usage: StreamUsage) -> ClaudeStream:
        """Send the request; returns once Anthropic has answered it (HTTP 200, the stream begins). Raises
        ClaudeFailure when it refused or could not be reached."""
        anthropic = await self.ready()
        client = self.client_for(secret)
        try:
            # The raw event stream, not ``messages.stream``: that helper also rebuilds the whole message after
            # every event, which we never read; measured here it cost a third more CPU per answer.
            cached_system, cached_messages = with_cache_breakpoints(system, messages)
            stream = await client.messages.create(model=model, max_tokens=max_tokens, system=cached_system,
                                                  messages=cached_messages, stream=True)  # type: ignore[arg-type]
        except anthropic.AnthropicError as exc:
            raise classify(exc) from exc
        return ClaudeStream(cast("AsyncStream[Any]", stream), usage)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
