"""First middleware: every request's Slack client, ``respond`` and ``ack`` neutralise what they post (docs/security.md).

Bolt builds a plain AsyncWebClient for each request, and ``respond`` posts to the response URL with a client of
its own: both are replaced here, before any other middleware or listener (``say``, the assistant's helpers) is
built from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.listeners.middleware import plain
from bot.slack.safe_text import SafeAck, SafeRespond, SafeWebClient

if TYPE_CHECKING:
    from bot.runtime import Runtime


def register(runtime: Runtime) -> None:
    runtime.bolt.use(plain(safe_output))


async def safe_output(context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    context["client"] = SafeWebClient.like(context.client)
    context["ack"] = SafeAck()
    if context.response_url:
        context["respond"] = SafeRespond(response_url=context.response_url, proxy=context.client.proxy,
                                         ssl=context.client.ssl)
    return await next()
