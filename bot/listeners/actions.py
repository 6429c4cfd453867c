"""Interactive actions on the bot's messages: the 👍/👎 buttons under answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.conversation.feedback import FeedbackOutcome, rate_answer
from bot.slack.render_answers import FEEDBACK_ACTION, feedback_thanks, parse_feedback

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

NOT_YOURS = "Only the person who asked can rate this answer."
UNKNOWN = "I cannot find the request behind this answer any more, so the rating was not recorded."


def register(runtime: Runtime) -> None:
    runtime.bolt.action(FEEDBACK_ACTION)(AnswerFeedback(runtime).on_feedback)


class AnswerFeedback:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_feedback(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                          client: AsyncWebClient) -> None:
        await ack()
        user_id = body["user"]["id"]
        parsed = parse_feedback(action.get("value"))
        if parsed is None:
            log.warning("feedback from %s with an unexpected value %r", user_id, action.get("value"))
            reply = UNKNOWN
        else:
            rating, record_id = parsed
            outcome = await rate_answer(self.runtime.sessions, record_id=record_id, user_id=user_id, rating=rating)
            reply = {FeedbackOutcome.RECORDED: feedback_thanks(rating), FeedbackOutcome.NOT_YOURS: NOT_YOURS,
                     FeedbackOutcome.UNKNOWN: UNKNOWN}[outcome]
        message = body.get("message") or {}
        await client.chat_postEphemeral(channel=(body.get("channel") or {}).get("id", ""), user=user_id,
                                        text=reply, thread_ts=message.get("thread_ts") or message.get("ts"))
