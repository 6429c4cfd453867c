"""What a conversation turn tells the rest of the product: one observer, told each event of the turn in order.

ChatService calls one `ConversationObserver`; bot/app.py builds it as `Observers(metrics, key alerts, secret
alerts, budget alerts)`. Each of those subclasses `QuietObserver` and overrides only the events it cares about:
the metrics the gate's decisions, the first text, Anthropic's errors and each answer's end; the key alerts a key
Anthropic refused, a failing key that worked again and a workspace without a usable key; the secret alerts a
blocked credential; the budget alerts a budget's spend. The metrics' events are plain calls on the hot path; the
alerts' are awaited, and never raise (an alert must not break an answer or a refusal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.domain.errors import ClaudeFailure
from bot.domain.requests import ChatRequest


class ConversationObserver(Protocol):
    def gate_decided(self, surface: str, outcome: str, reason: str, seconds: float) -> None:
        """The gate decided a request (``admitted``, ``refused`` with its reason, ``duplicate``) in ``seconds``."""

    def answer_began(self) -> None:
        """An admitted request's answer is under way (until ``answer_finished``)."""

    def first_text(self, surface: str, seconds: float) -> None:
        """The answer's first text, ``seconds`` after the request arrived."""

    def anthropic_error(self, kind: str) -> None:
        """A call to Anthropic failed with a failure of this kind (failures Anthropic did not cause are not told)."""

    def answer_finished(self, *, surface: str, model: str, role: str, error_kind: str | None, input_tokens: int,
                        output_tokens: int, cost_usd: float) -> None:
        """The answer ended (``error_kind`` None: it was whole), with what it cost by Anthropic's count."""

    async def key_failed(self, label: str, failure: ClaudeFailure) -> None:
        """Anthropic refused the key ``label`` (401/403)."""

    async def key_recovered(self, label: str, asked_at: datetime) -> None:
        """A ``failing`` key got the request made at ``asked_at`` through."""

    async def no_active_key(self, request: ChatRequest) -> bool:
        """The gate refused ``request``: its role's workspace has no usable key. True when admins have been told."""
        ...

    async def secret_blocked(self, request: ChatRequest) -> None:
        """The gate refused ``request``: it holds a credential (SECRET_POLICY=block)."""

    async def spend_changed(self, user_id: str, exhausted: tuple[str, str] | None) -> None:
        """A budgeted answer of ``user_id`` ended, or the budget ``exhausted`` (scope, period) refused them."""


class QuietObserver:
    """Every event of `ConversationObserver`, ignored: subclass it and override the events you care about."""

    def gate_decided(self, surface: str, outcome: str, reason: str, seconds: float) -> None:
        return None

    def answer_began(self) -> None:
        return None

    def first_text(self, surface: str, seconds: float) -> None:
        return None

    def anthropic_error(self, kind: str) -> None:
        return None

    def answer_finished(self, *, surface: str, model: str, role: str, error_kind: str | None, input_tokens: int,
                        output_tokens: int, cost_usd: float) -> None:
        return None

    async def key_failed(self, label: str, failure: ClaudeFailure) -> None:
        return None

    async def key_recovered(self, label: str, asked_at: datetime) -> None:
        return None

    async def no_active_key(self, request: ChatRequest) -> bool:
        return False

    async def secret_blocked(self, request: ChatRequest) -> None:
        return None

    async def spend_changed(self, user_id: str, exhausted: tuple[str, str] | None) -> None:
        return None


class Observers:
    """Several observers as one: each event goes to each of them, in the order given."""

    def __init__(self, *observers: ConversationObserver) -> None:
        self.observers = observers

    def gate_decided(self, surface: str, outcome: str, reason: str, seconds: float) -> None:
        for observer in self.observers:
            observer.gate_decided(surface, outcome, reason, seconds)

    def answer_began(self) -> None:
        for observer in self.observers:
            observer.answer_began()

    def first_text(self, surface: str, seconds: float) -> None:
        for observer in self.observers:
            observer.first_text(surface, seconds)

    def anthropic_error(self, kind: str) -> None:
        for observer in self.observers:
            observer.anthropic_error(kind)

    def answer_finished(self, *, surface: str, model: str, role: str, error_kind: str | None, input_tokens: int,
                        output_tokens: int, cost_usd: float) -> None:
        for observer in self.observers:
            observer.answer_finished(surface=surface, model=model, role=role, error_kind=error_kind,
                                     input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd)

    async def key_failed(self, label: str, failure: ClaudeFailure) -> None:
        for observer in self.observers:
            await observer.key_failed(label, failure)

    async def key_recovered(self, label: str, asked_at: datetime) -> None:
        for observer in self.observers:
            await observer.key_recovered(label, asked_at)

    async def no_active_key(self, request: ChatRequest) -> bool:
        told = False
        for observer in self.observers:
            told = await observer.no_active_key(request) or told
        return told

    async def secret_blocked(self, request: ChatRequest) -> None:
        for observer in self.observers:
            await observer.secret_blocked(request)

    async def spend_changed(self, user_id: str, exhausted: tuple[str, str] | None) -> None:
        for observer in self.observers:
            await observer.spend_changed(user_id, exhausted)
