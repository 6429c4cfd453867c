"""One error handler for the whole app: log with context, never crash, never show a traceback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.response import BoltResponse

if TYPE_CHECKING:
    from bot.app import ClaudeGate

log = logging.getLogger(__name__)


def register(gate: ClaudeGate) -> None:
    @gate.bolt.error
    async def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None) -> BoltResponse | None:
        event = body.get("event") if isinstance(body.get("event"), dict) else {}
        log.error("unhandled error in %s/%s: %s", body.get("type"), event.get("type") or body.get("command"),
                  error, exc_info=error)
        if response is None:  # a listener running after its ack: Slack already has its 200
            return None
        # The work is not idempotent: ask Slack not to retry it (bolt-python #845).
        return BoltResponse(status=200, body="", headers={"X-Slack-No-Retry": "1"})
