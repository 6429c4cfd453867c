"""Fuzzing the HTTP endpoint: hostile slash-command arguments through signed requests, and unsigned
bodies of every shape. No 5xx, no traceback, no state change (but what a valid command does)."""

from __future__ import annotations

import logging
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.commands import ADMIN, SELF, CommandError, parse_command
from bot.domain.roles import Role
from tests.app.test_command_fuzz import TEXTS
from tests.support.fakes.signing import command_body
from tests.support.harness import Harness, eventually

HOSTILE_ARGUMENTS = [
    "audit ²", "audit ٣", "audit 𝟙𝟘", "audit " + "9" * 5000, "usage days=10000000", "usage days=１０",
    "policy set user max_tokens ²", "policy set user rpm_limit " + "1" + "0" * 40, "policy set user max_tokens -0",
    "keys add k env:\x00KEY", "keys add k\x1b[31m env:KEY", "grant <@U2\x00> user", "grant U2 user\u202e",
    "whois \x07\x08\x7f", "usage \r\n<@U2>", "groups map <!subteam^S0X|@x\n> user", "budget set org daily ²",
]
BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=20)),
                 lambda inner: st.one_of(st.lists(inner, max_size=4),
                                         st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                 max_leaves=12).map(lambda v: __import__("json").dumps(v).encode()),
    st.builds(lambda depth: (b"[" * depth) + (b"]" * depth), st.integers(1000, 100_000)),
    st.builds(lambda t: ("payload=" + t).encode(), st.text(max_size=200)),
)
HEADER_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=80)  # what HTTP can carry
HEADERS = st.fixed_dictionaries({}, optional={
    "X-Slack-Request-Timestamp": st.one_of(st.just(str(int(time.time()))), HEADER_TEXT,
                                           st.just("9" * 5000), st.just("１７００")),
    "X-Slack-Signature": st.one_of(HEADER_TEXT, st.just("v0=" + "a" * 64)),
    "Content-Type": st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]),
})


def parses(command: str, text: str) -> bool:
    try:
        parse_command(command, text)
    except CommandError:
        return False
    return True


def tracebacks_or_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_hostile_command_arguments_over_http_are_one_line_and_change_nothing(harness: Harness, caplog) -> None:
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.grant("UOTHER", Role.OWNER)
    examples: list[tuple[str, str]] = [(ADMIN, text) for text in HOSTILE_ARGUMENTS]

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.sampled_from([ADMIN, SELF]), TEXTS)
    def collect(command: str, text: str) -> None:
        examples.append((command, text))

    collect()
    caplog.set_level(logging.INFO)
    for command, text in examples:
        before = await harness.table_snapshot()
        response_url = harness.slack.new_response_url()
        status, _ = await harness.post_signed(command_body(command, text, "UOWNER", response_url=response_url))
        assert status == 200, (command, text)
        answer = await eventually(lambda: next((r["body"] for r in harness.slack.responses
                                                if r["url"] == response_url), None))  # noqa: B023
        assert "went wrong on my side" not in answer["text"], (command, text)
        if not parses(command, text):
            assert answer["text"].startswith(":warning:"), (command, text, answer["text"])
            assert await harness.table_snapshot() == before, (command, text)
    assert tracebacks_or_errors(caplog) == []


async def test_unsigned_bodies_of_any_shape_are_401_and_change_nothing(harness: Harness, caplog) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    before = await harness.table_snapshot()
    examples: list[tuple[bytes, dict[str, str]]] = []

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(BODIES, HEADERS)
    def collect(body: bytes, headers: dict[str, str]) -> None:
        examples.append((body, headers))

    collect()
    caplog.set_level(logging.DEBUG)
    for body, headers in examples:
        caplog.clear()
        async with harness.http.post(f"{harness.url}/slack/events", data=body, headers=headers) as response:
            assert response.status == 401, (body[:80], headers)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING and not warnings[0].exc_info
    assert await harness.table_snapshot() == before
    assert harness.anthropic.requests == [] and harness.slack.calls == []
