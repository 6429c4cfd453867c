"""Replayed slash commands and interactions run once: each is claimed by its ``trigger_id`` in the shared database
(a signed request stays valid for 5 minutes, so a captured one could be sent again), as events are by id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.response import BoltResponse

from bot.domain.requests import trigger_claim
from bot.listeners.middleware import plain
from bot.services.conversation.claims import claim_event

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def register(runtime: Runtime) -> None:
    async def drop_replays(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        trigger_id = body.get("trigger_id")
        if (isinstance(trigger_id, str) and trigger_id and body.get("type") != "event_callback"
                and "command" not in body):  # slash commands: claimed after their ack (first_run, in the listener)
            if not await claim_event(runtime.db, runtime.clock, trigger_claim(trigger_id)):
                log.info("dropped a replayed interaction (its trigger_id was used before)")
                return BoltResponse(status=200, body="")
        return await next()

    runtime.bolt.use(plain(drop_replays))



async def first_run(runtime: Runtime, body: dict[str, Any]) -> bool:
    """Whether this slash command runs for the first time: its trigger_id is claimed here, after its ack.

    Not before the ack: the claim is a database write, and under load (hundreds of answers sharing the pool or
    SQLite's one connection) waiting for it before the ack took seconds, past Slack's 3 s. A replay is
    acknowledged like the original and does nothing else."""
    trigger_id = body.get("trigger_id")
    if isinstance(trigger_id, str) and trigger_id and not await claim_event(
            runtime.db, runtime.clock, trigger_claim(trigger_id)):
        log.info("dropped a replayed slash command (its trigger_id was used before)")
        return False
    return True
