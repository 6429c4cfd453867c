"""Global middleware, before every listener: drop what we cannot act on, then note who is asking.

1. Events whose shape we cannot act on are acknowledged and dropped unread; so are the channel messages
   (message.channels / message.groups) that cannot be follow-ups, which is nearly all of them.
2. ``context["requester"]``: a LazyRequester for the person a request comes from, resolved once, on first use. Every
   listener takes it from there instead of looking the user up itself.

Every global middleware of the app is registered through :func:`plain`: Bolt's function middleware builds some thirty
keyword arguments for every call (``build_async_required_kwargs``), and with six of them that was half the CPU of a
channel message nobody answers (``message.channels`` delivers every one; bench/ignored_messages.py).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.listeners.events import CHANNEL_TYPES, may_be_follow_up
from bot.logging_setup import EVENT_ID
from bot.slack.payloads import asker_id, malformed_event

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


PLAIN_ARGUMENTS = frozenset({"body", "context", "next"})


class PlainMiddleware(AsyncMiddleware):
    """A global middleware function taking any of ``body``, ``context`` and ``next``, called with exactly those: its
    argument names are read once, here, instead of Bolt matching them against every argument it knows per call."""

    def __init__(self, func: Callable[..., Awaitable[BoltResponse | None]]) -> None:
        self.func = func
        self.arg_names = tuple(inspect.signature(func).parameters)
        unknown = set(self.arg_names) - PLAIN_ARGUMENTS
        if unknown:
            raise TypeError(f"{func.__name__} takes {sorted(unknown)}; plain middleware takes only body, context, next")

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        available = {"body": req.body, "context": req.context, "next": next}
        return await self.func(**{name: available[name] for name in self.arg_names})

    @property
    def name(self) -> str:
        return f"PlainMiddleware({self.func.__name__})"


def plain(func: Callable[..., Awaitable[BoltResponse | None]]) -> PlainMiddleware:
    return PlainMiddleware(func)


def register(runtime: Runtime) -> None:
    runtime.bolt.use(plain(note_event_id))
    runtime.bolt.use(plain(drop_malformed_events))

    async def note_requester(body: dict[str, Any], context: AsyncBoltContext,
                             next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        user_id = asker_id(body)
        if user_id is not None:
            context["requester"] = runtime.directory.lazy(user_id)
        return await next()

    runtime.bolt.use(plain(note_requester))


async def note_event_id(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    """The Slack event id for log lines (LOG_FORMAT=json): the listener's task starts with a copy of this context."""
    event_id = body.get("event_id")
    EVENT_ID.set(event_id[:40] if isinstance(event_id, str) and event_id else None)
    return await next()


def ignorable_channel_message(body: dict[str, Any]) -> bool:
    event = body.get("event")
    return (isinstance(event, dict) and event.get("type") == "message" and event.get("channel_type") in CHANNEL_TYPES
            and not may_be_follow_up(event))


async def drop_malformed_events(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    if ignorable_channel_message(body):
        return BoltResponse(status=200, body="")
    problem = malformed_event(body)
    if problem is not None:
        log.warning("dropped a malformed event (%s): event_id %r", problem, str(body.get("event_id"))[:40])
        return BoltResponse(status=200, body="")
    return await next()
