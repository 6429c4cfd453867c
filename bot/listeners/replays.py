"""Replayed slash commands and interactions run once: each is claimed by its ``trigger_id`` in the shared database
(a signed request stays valid for 5 minutes, so a captured one could be sent again), as events are by id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.response import BoltResponse

from bot.domain.requests import trigger_claim
from bot.listeners.middleware import plain
from bot.services.event_claims import claim_event

if TYPE_CHECKING:
    from bot.app import Runtime

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    async def drop_replays(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        trigger_id = body.get("trigger_id")
        if isinstance(trigger_id, str) and trigger_id and body.get("type") != "event_callback":
            if not await claim_event(runtime.sessions, runtime.clock, trigger_claim(trigger_id)):
                log.info("dropped a replayed slash command or interaction (its trigger_id was used before)")
                return BoltResponse(status=200, body="")
        return await next()

    runtime.bolt.use(plain(drop_replays))
