"""A conversation turn: gate → Claude (streamed) → Slack, with a finished record whatever happens."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState

from bot.config import Settings
from bot.domain.access import ChatAccess
from bot.domain.channels import system_prompt_in_channel
from bot.domain.conversation import AnswerNotDelivered, Turn, build_messages, history_budget, system_prompt
from bot.domain.decisions import Admission, AlreadyTaken, Outcome, Refusal, RefusalReason
from bot.domain.estimate import input_tokens_bound, text_tokens_bound
from bot.domain.marks import Icon, emphasis, icon
from bot.domain.pricing import estimated_cost
from bot.domain.requests import ChatRequest, Requester
from bot.domain.secrets import SecretPolicy, redact, screen_request
from bot.logging_setup import RECORD_ID
from bot.services.base import Service
from bot.services.conversation.claude import ClaudeFailure, ClaudeGateway, StreamUsage, classify
from bot.services.conversation.gate import Gate, Screened
from bot.services.conversation.observer import ConversationObserver, QuietObserver
from bot.services.conversation.stops import AnswerStops, StopSignal
from bot.services.keys.choice import KeyGuard
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database

log = logging.getLogger(__name__)

EMPTY_ANSWER = emphasis("Claude returned an empty answer. Try asking in other words.")
LARGEST_ANSWER_TOKENS = 64_000  # the history leaves room for an answer this long, whatever max_tokens is granted
CONTEXT_RETRY_SHARE = 4  # on "prompt is too long", retry once with a quarter of the history budget
# failure kinds that Anthropic did not cause
NOT_FROM_ANTHROPIC = frozenset({"delivery", "internal", "cancelled", "key_revoked"})
# Failures retried when they come before the first text of an answer, after these waits (Anthropic's retry-after
# when longer, up to MAX_RETRY_WAIT_SECONDS); a spend limit, a refused key or a bad request is never retried
RETRY_DELAYS = (0.5, 2.0)
MAX_RETRY_WAIT_SECONDS = 10.0
RETRIED_KINDS = frozenset({"overloaded", "rate_limited", "server", "connection", "interrupted"})
NEVER_RETRIED_KINDS = frozenset({"key", "spend_limit", "key_revoked"})
KEY_WITHDRAWN = ("The API key for this workspace was revoked before your question reached Claude: nothing was sent. "
                 "Please ask again.")


class BeforeFirstText:
    """Which failed calls to Anthropic are tried again, and after what wait (tenacity's ``retry`` and ``wait``).

    Only before the first text of an answer (once it has begun, it is cut, not retried). "Prompt is too long" is
    tried once more at once with a quarter of the history budget; the RETRIED_KINDS (or whatever Anthropic's
    ``x-should-retry`` says) after each of ``delays`` in turn, or Anthropic's ``retry-after`` when longer, up to
    MAX_RETRY_WAIT_SECONDS; the NEVER_RETRIED_KINDS and anything that is not a ClaudeFailure never.
    """

    def __init__(self, delays: tuple[float, ...], parts: list[str]) -> None:
        self.delays = iter(delays)
        self.parts = parts
        self.history_share = 1  # the history budget is divided by this
        self.wait = 0.0

    def __call__(self, retry_state: RetryCallState) -> bool:  # tenacity 8.0 passes it by name
        failure = retry_state.outcome.exception() if retry_state.outcome is not None else None
        if not isinstance(failure, ClaudeFailure) or self.parts:
            return False
        if failure.kind == "context" and self.history_share == 1:
            self.history_share, self.wait = CONTEXT_RETRY_SHARE, 0.0
            return True
        retried = failure.should_retry if failure.should_retry is not None else failure.kind in RETRIED_KINDS
        delay = next(self.delays, None) if retried and failure.kind not in NEVER_RETRIED_KINDS else None
        if delay is None:
            return False
        self.wait = min(max(delay, failure.retry_after or 0.0), MAX_RETRY_WAIT_SECONDS)
        return True


class AnswerSink(Protocol):
    """Where an answer goes (a Slack thread, a terminal). It starts on the first text."""

    async def append(self, text: str) -> None: ...

    async def finish(self) -> None: ...

    async def fail(self, note: str) -> None:
        """End the answer with what arrived so far and a one-line note."""


HistoryLoader = Callable[[], Awaitable[list[Turn]]]
AdmissionHook = Callable[[Admission, ChatRequest], Awaitable[None]]  # with the request as screened (redacted)
ScreenedHook = Callable[[str, bool], None]  # through the first phase: (role, files allowed)
WordsLoader = Callable[[], Awaitable[str]]


ADMINS_TOLD = "An admin has been told; try again once a key is registered."


def stopped_note(by: str, asker: str) -> str:
    """The last line of an answer stopped with Slack's stop button."""
    who = "at your request" if by == asker else "by an admin"
    return emphasis(f"{icon(Icon.STOP)} Stopped {who}: the answer above is where Claude was.")


@dataclass
class ChatResult:
    decision: Admission | Refusal | AlreadyTaken
    text: str = ""
    failure: ClaudeFailure | None = None


def delivery_failure(exc: AnswerNotDelivered) -> ClaudeFailure:
    return ClaudeFailure("delivery", "I could not post the whole answer in Slack. Please ask again.",
                         detail=str(exc))


def cut_off_note(admission: Admission) -> str:
    """The last line of an answer cut at ``max_tokens``, naming what set that limit."""
    limit = admission.max_tokens_limited_by or f"the {admission.max_tokens:,}-token limit"
    return emphasis(f"The answer stops here: it reached {limit}. "
                    "Ask for the rest, or for a shorter answer.")


def _redacted_block(block: dict[str, Any]) -> dict[str, Any]:
    """A file with its credentials redacted: a text file's text (its name included) and a PDF's title (its file
    name); an image's and a PDF's content go as they are."""
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return {**block, "text": redact(block["text"])}
    if block.get("type") == "document" and isinstance(block.get("title"), str):
        return {**block, "title": redact(block["title"])}
    return block


class ChatService(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort, gate: Gate,
                 claude: ClaudeGateway, observer: ConversationObserver | None = None,
                 stops: AnswerStops | None = None) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.gate = gate
        # Slack's stop button on the answers of this process (bot/services/conversation/stops.py)
        self.stops = stops or AnswerStops(db=db, settings=settings, clock=clock, slack=slack)
        self.observer: ConversationObserver = observer or QuietObserver()  # metrics and alerts (bot/app.py)
        self.claude = claude
        self.records = gate.records  # the one record writer: finishes here, held refusals in the gate
        self.keys = KeyGuard(db.engine)
        self.retry_delays: tuple[float, ...] = RETRY_DELAYS

    async def answer(self, request: ChatRequest, history: HistoryLoader, sink: AnswerSink, *,
                     on_admitted: AdmissionHook | None = None, words: WordsLoader | None = None,
                     on_screened: ScreenedHook | None = None) -> ChatResult:
        """Ask the gate; if admitted, stream Claude's answer into ``sink``. Refusals are returned, not sent.

        ``words`` turns the request's text into what Claude reads (mentions looked up…): it runs only once the
        gate's first phase let the asker through, so a refused message costs nothing beyond the asker.
        ``history`` loads the earlier turns of the conversation (after the first phase, before the second: the
        reservation bounds what is sent) and ``on_admitted`` prepares the surface (a status, feedback buttons, a
        thread's title) of an admitted request, given the request as screened: its text is what Claude reads, with
        any credential redacted.
        """
        arrived = time.perf_counter()
        if self.records.full:  # the database is away and memory is bounded: fail closed
            return ChatResult(self.gate.refuse_unreachable(request))
        decision: Admission | Refusal | AlreadyTaken | Screened = await self.gate.screen(request)
        gate_seconds = time.perf_counter() - arrived
        turns: list[Turn] = []
        system = ""
        if isinstance(decision, Screened):
            # between the two phases: the words, a pre-check, the history and files, then the input's upper bound
            if words is not None:
                request = replace(request, text=await words())
            # secrets are judged on what Claude would read; from here on only the redacted text is used
            request = screen_request(request, self.settings.secret_policy)
            checking = time.perf_counter()
            early = await self.gate.precheck(request, decision)  # refused on its own text (rpm, a budget…): no fetch
            gate_seconds += time.perf_counter() - checking
            if early is not None:
                decision = early
        if isinstance(decision, Screened):
            channel = decision.access.channel
            if on_screened is not None:  # what the asker's role allows, before its history and files are fetched
                on_screened(decision.access.role.role.value, decision.access.policy.attachments)
            system = system_prompt_in_channel(
                system_prompt(self.settings.system_prompt, user_name=request.requester.name,
                              channel=request.channel_name or request.surface), channel.prompt if channel else None)
            turns = [*self._screened(await history()), Turn("user", request.text, request.requester.name)]
            estimate = input_tokens_bound(system, build_messages(turns, self._history_budget(request, system)),
                                          pdf_pages=sum(turn.pdf_pages for turn in turns))
            admitting = time.perf_counter()
            decision = await self.gate.admit(request, decision, input_estimate=estimate)
            gate_seconds += time.perf_counter() - admitting  # the gate's own time, not the history's
        if isinstance(decision, AlreadyTaken):
            self.observer.gate_decided(request.surface, "duplicate", "", gate_seconds)
            return ChatResult(decision)
        if isinstance(decision, Refusal):
            self.observer.gate_decided(request.surface, "refused", decision.reason.value, gate_seconds)
            if decision.reason is RefusalReason.NO_ACTIVE_KEY and await self.observer.no_active_key(request):
                decision = replace(decision, hint=ADMINS_TOLD)  # said only when someone was told
            if decision.reason is RefusalReason.SECRET:
                await self.observer.secret_blocked(request)
            if decision.budget is not None:
                await self.observer.spend_changed(request.requester.user_id, decision.budget)
            return ChatResult(decision)
        self.observer.gate_decided(request.surface, "admitted", "", gate_seconds)
        RECORD_ID.set(decision.record_id)  # log lines of this answer name its record (LOG_FORMAT=json)
        self.observer.answer_began()
        started, asked_at = time.monotonic(), self.clock()
        usage = StreamUsage()
        parts: list[str] = []
        failure: ClaudeFailure | None = None
        stop = self.stops.watch(decision.record_id)
        try:
            if on_admitted is not None:
                await self._prepare(on_admitted, decision, request)
            budget = self._history_budget(request, system)
            async with asyncio.timeout(self.settings.answer_timeout_seconds):
                await self._until_stopped(stop, self._ask(
                    decision, system, turns, budget, usage, parts, sink, on_first_text=lambda: (
                        self.observer.first_text(request.surface, time.perf_counter() - arrived))))
            if stop.by is not None:
                await sink.append(("\n\n" if parts else "") + stopped_note(stop.by, decision.user_id))
            elif not "".join(parts).strip():
                await sink.append(EMPTY_ANSWER)
            elif usage.output_tokens >= decision.max_tokens:
                await sink.append("\n\n" + cut_off_note(decision))
            await sink.finish()
        except asyncio.CancelledError:  # shutdown: the answer outlasted the grace (Runtime.close)
            failure = ClaudeFailure("cancelled", "Claude Gate restarted before this answer was finished.")
            await asyncio.shield(self._tell_user(sink, failure, partial=bool(parts)))
            raise
        except Exception as exc:  # every fault ends as one friendly line, never a stack trace in Slack
            failure = delivery_failure(exc) if isinstance(exc, AnswerNotDelivered) else classify(
                exc, mid_stream=bool(parts))
            if failure.kind == "internal":
                log.exception("answer for record %s failed", decision.record_id)
            else:
                log.warning("answer for record %s failed: %s (%s)", decision.record_id, failure.kind, failure.detail)
            await self._tell_user(sink, failure, partial=bool(parts))
            if failure.kind not in NOT_FROM_ANTHROPIC:
                self.observer.anthropic_error(failure.kind)
            if failure.is_key_failure:
                await self.observer.key_failed(decision.key_label, failure)
        finally:
            self.stops.forget(decision.record_id)
            self.observer.answer_finished(
                surface=request.surface, model=decision.model, role=decision.role.value,
                error_kind=failure.kind if failure else None, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=estimated_cost(decision.model, usage.input_tokens, usage.output_tokens, self.settings.prices))
            output_tokens, source = usage.output_tokens, "anthropic"
            if usage.accepted and not usage.final:  # cut before Anthropic's final count: bound what was streamed
                output_tokens, source = max(output_tokens, text_tokens_bound("".join(parts))), "streamed"
            await self.records.finish(
                record_id=decision.record_id, model=decision.model,
                outcome=Outcome.ERROR if failure else Outcome.STOPPED if stop.by is not None else Outcome.OK,
                input_tokens=usage.input_tokens, output_tokens=output_tokens,
                latency_ms=round((time.monotonic() - started) * 1000), error_type=failure.kind if failure else None,
                cache_write_tokens=usage.cache_write_tokens, cache_read_tokens=usage.cache_read_tokens,
                usage_source=source, admission=decision,
            )
        if decision.budget_alert_due:
            await asyncio.shield(self.observer.spend_changed(decision.user_id, None))
        if decision.key_failing and usage.accepted:
            await asyncio.shield(self.observer.key_recovered(decision.key_label, asked_at))
        return ChatResult(decision, "".join(parts), failure)

    @staticmethod
    async def _until_stopped(stop: StopSignal, answering: Awaitable[None]) -> None:
        """Run the answer until it ends or its stop is requested: then it is cancelled, which closes Anthropic's
        stream (what arrived stays, and its usage is what the stream reported)."""
        task = asyncio.ensure_future(answering)
        stopping = asyncio.ensure_future(stop.requested.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            task.result()

    def _history_budget(self, request: ChatRequest, system: str) -> int:
        """The history's token budget, leaving room for the largest answer a role may have (the history is chosen
        before admission decides max_tokens, and the reservation bounds exactly what is sent)."""
        return history_budget(self.settings.context_token_budget, max_tokens=LARGEST_ANSWER_TOKENS,
                              system=system)

    async def access(self, requester: Requester) -> ChatAccess:
        """What ``requester`` may do, by the gate's own checks, without recording a request."""
        access, refusal = await self.gate.who_may_chat(requester)
        role = access.role.role
        if refusal is not None:
            return ChatAccess(role, False, reason=refusal.message, hint=refusal.hint)
        catalog = self.settings.models
        aliases = tuple(catalog.alias_of(model) for model in catalog.allowed(access.policy.models))
        return ChatAccess(role, True, aliases, access.policy.max_tokens, access.policy.rpm_limit)

    async def passes_first_phase(self, request: ChatRequest) -> bool:
        """Whether the gate's first phase (account, role, channel, model) would let ``request`` through, recording
        nothing: a surface asks before it looks up anything in Slack for the request."""
        return await self.gate.first_phase_refusal(request) is None

    def _screened(self, turns: list[Turn]) -> list[Turn]:
        """The thread's earlier messages with every credential redacted (any SECRET_POLICY but ``off``)."""
        if self.settings.secret_policy is SecretPolicy.OFF:
            return turns
        return [replace(turn, text=redact(turn.text), blocks=tuple(_redacted_block(b) for b in turn.blocks))
                for turn in turns]

    async def _prepare(self, on_admitted: AdmissionHook, admission: Admission, request: ChatRequest) -> None:
        try:
            await on_admitted(admission, request)
        except Exception:  # a status or a button is not worth failing the answer for
            log.warning("preparing the answer for record %s failed", admission.record_id, exc_info=True)

    async def _ask(self, admission: Admission, system: str, turns: list[Turn], budget: int, usage: StreamUsage,
                   parts: list[str], sink: AnswerSink, *, on_first_text: Callable[[], None]) -> None:
        """Call Anthropic and relay the answer; retry what failed before the first text (we own the retry: the SDK
        has ``max_retries=0``). Every attempt re-reads the key under the lock `keys revoke` takes, held until
        Anthropic has answered the request: no call starts with a key after its revoke was acknowledged."""
        policy = BeforeFirstText(self.retry_delays, parts)

        def retrying(retry_state: RetryCallState) -> None:
            failure = retry_state.outcome.exception() if retry_state.outcome is not None else None
            log.info("record %s: %s before the first text; retrying in %.1f s", admission.record_id,
                     getattr(failure, "kind", "?"), policy.wait)
            usage.input_tokens = usage.output_tokens = 0

        async for attempt in AsyncRetrying(retry=policy, wait=lambda retry_state: policy.wait, before_sleep=retrying,
                                           reraise=True):
            with attempt:
                async with self.keys.checked(admission.key_label, admission.key_env_var) as secret:
                    if secret is None:
                        raise ClaudeFailure("key_revoked", KEY_WITHDRAWN)
                    stream = await self.claude.open_stream(
                        secret=secret, model=admission.model, max_tokens=admission.max_tokens, system=system,
                        messages=build_messages(turns, budget // policy.history_share), usage=usage)
                async with aclosing(stream.text()) as texts:
                    async for text in texts:
                        parts.append(text)
                        await sink.append(text)
                        if len(parts) == 1:
                            on_first_text()

    async def _tell_user(self, sink: AnswerSink, failure: ClaudeFailure, *, partial: bool) -> None:
        if partial:
            note = emphasis(f"{icon(Icon.WARNING)} {failure.message.rstrip('.')}: the answer above is cut off here. "
                            "Ask again to continue.")
        else:
            note = f"{icon(Icon.WARNING)} {failure.message}"
        try:
            await sink.fail(note)
        except Exception:
            log.exception("could not tell the user about a failed answer")
