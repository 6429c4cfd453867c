"""The conversation observer through the real app: one observer hears every event of a turn, in order, and the
metrics and the alerts are observers composed into it. The budget scope value type."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.domain.budgets import Scope, ScopeKind
from bot.domain.errors import ClaudeFailure
from bot.domain.requests import ChatRequest
from bot.domain.roles import Role
from bot.metrics import Metrics
from bot.services.conversation.observer import ConversationObserver, Observers, QuietObserver
from bot.services.keys.alerts import KeyAlerts
from bot.services.spend.alerts import BudgetAlerts
from tests.support.harness import Harness, eventually

AWS = "AKIA" + "IOSFODNN7EXAMPLQ"


class Recorder(QuietObserver):
    def __init__(self, told: bool = False) -> None:
        self.events: list[str] = []
        self.told = told

    def gate_decided(self, surface: str, outcome: str, reason: str, seconds: float) -> None:
        self.events.append(f"gate:{outcome}{':' + reason if reason else ''}")

    def answer_began(self) -> None:
        self.events.append("began")

    def first_text(self, surface: str, seconds: float) -> None:
        self.events.append("first text")

    def anthropic_error(self, kind: str) -> None:
        self.events.append(f"anthropic:{kind}")

    def answer_finished(self, *, surface: str, model: str, role: str, error_kind: str | None, input_tokens: int,
                        output_tokens: int, cost_usd: float) -> None:
        self.events.append(f"finished:{error_kind or 'ok'}")

    async def key_failed(self, label: str, failure: ClaudeFailure) -> None:
        self.events.append(f"key failed:{label}")

    async def no_active_key(self, request: ChatRequest) -> bool:
        self.events.append("no key")
        return self.told

    async def secret_blocked(self, request: ChatRequest) -> None:
        self.events.append("secret")

    async def key_recovered(self, label: str, asked_at: datetime) -> None:
        self.events.append(f"key recovered:{label}")


async def listening(harness: Harness) -> Recorder:
    recorder = Recorder()
    harness.runtime.chat.observer = Observers(recorder, harness.runtime.chat.observer)
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    return recorder


def test_the_app_composes_the_metrics_and_the_alerts_into_one_observer(harness: Harness) -> None:
    observer = harness.runtime.chat.observer
    assert isinstance(observer, Observers)
    kinds = [type(o) for o in observer.observers]
    assert kinds[0] is Metrics and KeyAlerts in kinds and BudgetAlerts in kinds
    assert observer.observers[0] is harness.runtime.metrics  # what /metrics serves is what the turn told


async def test_an_answer_tells_the_observer_each_event_in_order(harness: Harness) -> None:
    recorder = await listening(harness)
    await harness.mention("U1", "hello")
    await harness.settled_records(1)
    await eventually(lambda: "finished:ok" in recorder.events)
    assert recorder.events == ["gate:admitted", "began", "first text", "finished:ok"]
    page = (await harness.runtime.metrics.render()).decode()  # the metrics heard it through the same observer
    assert 'claude_gate_requests_total{outcome="admitted",reason="",surface="mention"} 1.0' in page
    assert "claude_gate_answers_in_flight 0.0" in page


async def test_a_refused_key_and_a_blocked_secret_are_told(harness: Harness) -> None:
    recorder = await listening(harness)
    harness.anthropic.fail_next("auth")
    await harness.mention("U1", "hello")
    await harness.settled_records(1)
    await eventually(lambda: "finished:key" in recorder.events)
    assert recorder.events == ["gate:admitted", "began", "anthropic:key", "key failed:default", "finished:key"]
    recorder.events.clear()
    await harness.mention("U1", f"my key is {AWS}")
    await eventually(lambda: "secret" in recorder.events)
    assert recorder.events == ["gate:refused:secret", "secret"]


async def test_observers_tell_each_in_turn_and_admins_told_if_any_told() -> None:
    quiet, telling = Recorder(), Recorder(told=True)
    both: ConversationObserver = Observers(quiet, telling)
    request = ChatRequest.__new__(ChatRequest)
    assert await both.no_active_key(request) is True
    assert quiet.events == telling.events == ["no key"]
    assert await Observers(Recorder(), Recorder()).no_active_key(request) is False
    assert await QuietObserver().no_active_key(request) is False


@pytest.mark.parametrize(("scope", "key"), [
    (Scope.org(), "org"), (Scope.group("S0ENG"), "group:S0ENG"), (Scope.user("U1"), "user:U1"),
    (Scope.role("power"), "role:power"),
])
def test_a_scope_is_stored_as_before_and_read_back(scope: Scope, key: str) -> None:
    assert scope.key == key and Scope.parse(key) == scope


def test_a_key_no_scope_has_is_refused() -> None:
    for key in ("", "orgs", "org:x", "group:", "team:T1", "S0ENG"):
        with pytest.raises(ValueError, match="not a budget scope"):
            Scope.parse(key)
    assert Scope.parse("group:S1").kind is ScopeKind.GROUP and ScopeKind.GROUP.prefix == "group:"
