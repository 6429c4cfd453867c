"""Slack's side of a scheduled prompt's run (bot/services/schedules): once the gate admits it, a root line in the
schedule's channel naming the schedule and who set it, and Claude's answer streamed into that line's thread with
the conversations' relay (bot/slack/stream.py). A refused run posts nothing in the channel."""

from __future__ import annotations

import logging
from dataclasses import replace

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import AnswerNotDelivered, Turn
from bot.domain.decisions import Admission
from bot.domain.requests import ChatRequest
from bot.services.conversation.chat import ChatResult, ChatService
from bot.slack.render_answers import feedback_blocks
from bot.slack.stream import SLACK_FAULTS, SlackAnswer, SlackRelay, slack_error

log = logging.getLogger(__name__)


class ThreadOnAdmission:
    """An AnswerSink whose thread is made when the request is admitted (``open``): before that there is nowhere
    to write, and a write is a delivery failure."""

    def __init__(self) -> None:
        self.answer: SlackAnswer | None = None

    def _open(self) -> SlackAnswer:
        if self.answer is None:
            raise AnswerNotDelivered("the scheduled prompt's root message could not be posted")
        return self.answer

    async def append(self, text: str) -> None:
        await self._open().append(text)

    async def finish(self) -> None:
        await self._open().finish()

    async def fail(self, note: str) -> None:
        if self.answer is not None:
            await self.answer.fail(note)


async def _no_history() -> list[Turn]:
    return []


class SlackScheduleRunner:
    """The ScheduleRunner of bot/services/schedules/service.py for Slack."""

    def __init__(self, client: AsyncWebClient, chat: ChatService, relay: SlackRelay | None = None) -> None:
        self.client = client
        self.chat = chat
        self.relay = relay or SlackRelay(client)

    async def run(self, request: ChatRequest, heading: str) -> ChatResult:
        assert request.channel_id is not None
        channel = request.channel_id
        request = replace(request, channel_name=f"channel <#{channel}>, a prompt {request.requester.name} scheduled")
        sink = ThreadOnAdmission()

        async def admitted(admission: Admission, asked: ChatRequest) -> None:
            try:
                posted = await self.client.chat_postMessage(channel=channel, text=heading)
            except SLACK_FAULTS as exc:
                log.warning("could not post scheduled prompt's root line in %s: %s", channel, slack_error(exc))
                return
            sink.answer = self.relay.answer(channel=channel, thread_ts=str(posted["ts"]),
                                            user_id=request.requester.user_id, team_id=request.requester.team_id)
            sink.answer.feedback_blocks = feedback_blocks(admission.record_id)

        try:
            return await self.chat.answer(request, _no_history, sink, on_admitted=admitted)
        finally:
            if sink.answer is not None:
                sink.answer.abandon()
