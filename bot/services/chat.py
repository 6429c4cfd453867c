"""A conversation turn: gate → Claude (streamed) → Slack, with a finished record whatever happens."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.conversation import Turn, build_messages, system_prompt
from bot.domain.decisions import Admission, Outcome, Refusal
from bot.domain.requests import ChatRequest
from bot.services.claude import ClaudeFailure, ClaudeGateway, StreamUsage, classify
from bot.services.gate import Gate
from bot.services.keys import secret_of
from bot.services.usage import complete_request

log = logging.getLogger(__name__)


class AnswerSink(Protocol):
    """Where an answer goes (a Slack stream, a terminal). It starts on the first text."""

    async def append(self, text: str) -> None: ...

    async def finish(self) -> None: ...

    async def fail(self, note: str) -> None:
        """End the answer with what arrived so far and a one-line note."""


HistoryLoader = Callable[[], Awaitable[list[Turn]]]
KeyFailureHandler = Callable[[str, ClaudeFailure], Awaitable[None]]


@dataclass
class ChatResult:
    decision: Admission | Refusal
    text: str = ""
    failure: ClaudeFailure | None = None


class ChatService:
    def __init__(self, *, gate: Gate, claude: ClaudeGateway, sessions: async_sessionmaker[AsyncSession],
                 settings: Settings, on_key_failure: KeyFailureHandler | None = None) -> None:
        self.gate = gate
        self.claude = claude
        self.sessions = sessions
        self.settings = settings
        self.on_key_failure = on_key_failure

    async def answer(self, request: ChatRequest, history: HistoryLoader, sink: AnswerSink) -> ChatResult:
        """Ask the gate; if admitted, stream Claude's answer into ``sink``. Refusals are returned, not sent.

        ``history`` loads the earlier turns of the conversation; it runs only for admitted requests.
        """
        decision = await self.gate.admit_request(request)
        if isinstance(decision, Refusal):
            return ChatResult(decision)
        started = time.monotonic()
        usage = StreamUsage()
        parts: list[str] = []
        failure: ClaudeFailure | None = None
        try:
            secret = await self._secret(decision)
            system = system_prompt(self.settings.system_prompt, user_name=request.requester.name,
                                   channel=request.channel_name or request.surface)
            budget = self.settings.context_token_budget
            turns = [*await history(), Turn("user", request.text, request.requester.name)]
            for attempt in range(2):
                try:
                    async with asyncio.timeout(self.settings.answer_timeout_seconds):
                        async for text in self.claude.stream_text(
                            secret=secret, model=decision.model, max_tokens=decision.max_tokens, system=system,
                            messages=build_messages(turns, budget), usage=usage,
                        ):
                            parts.append(text)
                            await sink.append(text)
                    break
                except ClaudeFailure as exc:
                    if exc.kind == "context" and not parts and attempt == 0:
                        budget //= 4  # trim harder and try once more
                        continue
                    raise
            await sink.finish()
        except asyncio.CancelledError:
            failure = ClaudeFailure("cancelled", "The answer was cancelled.")
            raise
        except Exception as exc:  # every fault ends as one friendly line, never a stack trace in Slack
            failure = classify(exc, mid_stream=bool(parts))
            if failure.kind == "internal":
                log.exception("answer for record %s failed", decision.record_id)
            else:
                log.warning("answer for record %s failed: %s (%s)", decision.record_id, failure.kind, failure.detail)
            await self._tell_user(sink, failure, partial=bool(parts))
            if failure.is_key_failure and self.on_key_failure is not None:
                await self.on_key_failure(decision.key_label, failure)
        finally:
            await asyncio.shield(complete_request(
                self.sessions, record_id=decision.record_id, model=decision.model,
                outcome=Outcome.ERROR if failure else Outcome.OK, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, latency_ms=round((time.monotonic() - started) * 1000),
                error_type=failure.kind if failure else None,
            ))
        return ChatResult(decision, "".join(parts), failure)

    async def _secret(self, admission: Admission) -> str:
        secret = secret_of(admission.key_env_var)
        if secret is None:
            raise ClaudeFailure("key", "The API key for this workspace is not available. An admin has been alerted.")
        return secret

    async def _tell_user(self, sink: AnswerSink, failure: ClaudeFailure, *, partial: bool) -> None:
        if partial:
            note = f"_:warning: {failure.message.rstrip('.')}: the answer above is incomplete. Ask again to continue._"
        else:
            note = f":warning: {failure.message}"
        try:
            await sink.fail(note)
        except Exception:
            log.exception("could not tell the user about a failed answer")
