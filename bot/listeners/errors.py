"""The one error handler: every exception a listener or middleware lets out ends here.

A GateError carries the line its user reads; anything else is a bug or a fault, logged with its traceback and shown
as one friendly line. Slash commands get the line as an ephemeral answer; elsewhere the error is logged only (a
conversation has its own fallback in bot/listeners/events.py; App Home, buttons and greetings fail quietly). Never a
traceback in Slack, never a crash.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse

from bot.domain.errors import SOMETHING_WENT_WRONG, GateError
from bot.domain.replies import Reply
from bot.slack.render import reply_blocks

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


def user_reply(error: Exception) -> Reply:
    """What the person who asked reads about ``error``."""
    if isinstance(error, GateError):
        return Reply.error(error.message, error.usage)
    return Reply.error(SOMETHING_WENT_WRONG)


def register(runtime: Runtime) -> None:
    @runtime.bolt.error
    async def on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None,
                       response: BoltResponse | None) -> BoltResponse | None:
        event: dict[str, Any] = body["event"] if isinstance(body.get("event"), dict) else {}
        where = f"{body.get('type')}/{event.get('type') or body.get('command')}"
        if isinstance(error, GateError):
            log.info("%s for %s refused (%s): %s", where, body.get("user_id") or event.get("user"), error.code,
                     error.message)
        elif body.get("command"):
            log.error("%s %r failed for %s", body.get("command"), body.get("text"), body.get("user_id"),
                      exc_info=error)
        else:
            log.error("unhandled error in %s: %s", where, error, exc_info=error)
        if body.get("command") and respond is not None:
            text, blocks = reply_blocks(user_reply(error))
            try:
                await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
            except Exception:
                log.exception("could not answer %s for %s", body.get("command"), body.get("user_id"))
        if response is None:  # a listener running after its ack: Slack already has its 200
            return None
        # The work is not idempotent: ask Slack not to retry it (bolt-python #845).
        return BoltResponse(status=200, body="", headers={"X-Slack-No-Retry": "1"})
