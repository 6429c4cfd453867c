"""First middleware: events whose shape we cannot act on are acknowledged and dropped, before any listener."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.response import BoltResponse

from bot.slack.payloads import malformed_event

if TYPE_CHECKING:
    from bot.app import ClaudeGate

log = logging.getLogger(__name__)


def register(gate: ClaudeGate) -> None:
    gate.bolt.use(drop_malformed_events)


async def drop_malformed_events(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    problem = malformed_event(body)
    if problem is not None:
        log.warning("dropped a malformed event (%s): event_id %r", problem, str(body.get("event_id"))[:40])
        return BoltResponse(status=200, body="")
    return await next()
