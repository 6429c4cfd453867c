"""Small hostile inputs (): each is one clear line, never "Something went wrong" or a traceback, and
changes nothing; admin rights need a human account; a billing user's App Home shows no admin overview."""

from __future__ import annotations

import json
import logging

import pytest

from bot.domain.commands import ADMIN, SELF
from bot.domain.roles import Role
from bot.logging_setup import configure_logging
from tests.support.harness import Harness, eventually

HUGE = "9" * 5000  # more digits than int() converts (sys.get_int_max_str_digits)
NUMBER_TEXTS = [
    "audit ²", "audit ٣", "audit ⑤", "audit 𝟙𝟚", f"audit {HUGE}", "audit 1" + "0" * 30,
    "policy set user max_tokens ²", "policy set user max_tokens ３", f"policy set user max_tokens {HUGE}",
    "policy set user rpm_limit ¹⁰", f"policy set user daily_token_budget {HUGE}", "policy set user max_tokens 1\x00",
    "usage days=10000000", "usage days=²", f"usage days={HUGE}", f"usage all days={HUGE}", "usage days=99999999999999",
    "keys add k env:K rotate_days=٣", f"keys add k env:K rotate_days={HUGE}",
    "audit export days=10000000", "audit export days=²", f"requests approve {HUGE}", "requests deny ²",
]


@pytest.fixture
async def owner(harness: Harness) -> Harness:
    harness.slack.add_user("UOWNER")
    harness.slack.add_user("UOWNER2")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.grant("UOWNER2", Role.OWNER)
    return harness


@pytest.mark.parametrize("text", NUMBER_TEXTS)
async def test_unicode_digits_and_huge_numbers_are_one_line(owner: Harness, caplog: pytest.LogCaptureFixture,
                                                            text: str) -> None:
    before = await owner.table_snapshot()
    with caplog.at_level(logging.WARNING):
        answer = await owner.command("UOWNER", ADMIN, text)
    assert answer["text"].startswith(":warning:"), answer["text"]
    assert "went wrong" not in answer["text"] and "whole number" in answer["text"]
    assert len(answer["text"]) < 600  # the number is not echoed back in full
    assert await owner.table_snapshot() == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


async def test_the_largest_report_period_still_answers(owner: Harness) -> None:
    answer = await owner.command("UOWNER", ADMIN, "usage days=3660")
    assert "last 3,660 days" in answer["text"]


@pytest.mark.parametrize("kind", ["is_bot", "is_workflow_bot"])
async def test_a_bot_account_with_an_admin_grant_has_no_admin_rights(harness: Harness, kind: str) -> None:
    harness.slack.add_user("UBOTADMIN", is_bot=kind == "is_bot")[kind] = True
    harness.slack.add_user("UNEW")
    await harness.grant("UBOTADMIN", Role.OWNER)
    await harness.grant("UOTHEROWNER", Role.OWNER)
    before = await harness.table_snapshot()
    for text in ("grant <@UNEW> admin", "keys revoke default", "policy set user max_tokens 5", "audit",
                 "usage", "offboard <@UOTHEROWNER>"):
        answer = await harness.command("UBOTADMIN", ADMIN, text)
        assert answer["text"].startswith(":no_entry:"), (text, answer["text"])
    help_text = json.dumps(await harness.command("UBOTADMIN", ADMIN, "help"))
    assert "grant" not in help_text and "keys" not in help_text
    after = await harness.table_snapshot()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items()
                                                                    if k != "audit_log"}
    assert {row[3] for row in after["audit_log"] if row not in before["audit_log"]} == {"denied"}
    await harness.send_event({"type": "app_home_opened", "user": "UBOTADMIN", "channel": "DUBOTADMIN", "tab": "home"})
    await eventually(lambda: "UBOTADMIN" in harness.slack.home_views)
    assert "Overview" not in json.dumps(harness.slack.home_views["UBOTADMIN"])


async def test_billing_app_home_shows_usage_but_not_the_admin_overview(harness: Harness) -> None:
    harness.slack.add_user("UBILL")
    harness.slack.add_user("UADMIN")
    await harness.grant("UBILL", Role.BILLING)
    await harness.grant("UADMIN", Role.ADMIN)
    await harness.send_event({"type": "app_home_opened", "user": "UBILL", "channel": "DUBILL", "tab": "home"})
    await eventually(lambda: "UBILL" in harness.slack.home_views)
    view = json.dumps(harness.slack.home_views["UBILL"])
    assert "Usage today" in view and "requests" in view
    for admin_only in ("Overview", "Explicit roles", "Mapped groups", "Keys due for rotation", "admin 1"):
        assert admin_only not in view, admin_only
    await harness.send_event({"type": "app_home_opened", "user": "UADMIN", "channel": "DUADMIN", "tab": "home"})
    await eventually(lambda: "UADMIN" in harness.slack.home_views)
    assert "Keys due for rotation" in json.dumps(harness.slack.home_views["UADMIN"])


async def test_self_command_numbers(owner: Harness) -> None:
    answer = await owner.command("UOWNER", SELF, "model ²")
    assert answer["text"].startswith(":warning:") and "went wrong" not in answer["text"]


@pytest.mark.parametrize("log_prompts", [False, True])
async def test_debug_logs_hold_no_prompt_text_without_log_prompts(harness_factory, capsys: pytest.CaptureFixture,
                                                                   log_prompts: bool) -> None:
    """LOG_LEVEL=DEBUG: the libraries' payload loggers (Slack, Bolt, Anthropic, HTTP, SQL) stay above DEBUG unless
    LOG_PROMPTS=true, so neither the question nor Claude's answer reaches the log."""
    canary = "PROMPT-CANARY-7f3a9c"
    configure_logging(logging.DEBUG, [], log_prompts=log_prompts)
    try:
        harness = await harness_factory(log_level="DEBUG", log_prompts=log_prompts)
        harness.slack.add_user("U1")
        await harness.grant("U1", Role.USER)
        await harness.mention("U1", f"what is {canary}?")
        await harness.dm("U1", f"and in private, {canary}")
        await harness.settled_records(2)
        await eventually(lambda: len(harness.slack.calls_to("chat.startStream") + harness.slack.calls_to(
            "chat.postMessage")) >= 2)
        assert logging.getLogger().level == logging.DEBUG
    finally:
        logging.getLogger().handlers.clear()
    logs = capsys.readouterr().err
    assert ("DEBUG" in logs) == log_prompts  # with LOG_PROMPTS=true the libraries really log at DEBUG
    assert (canary in logs) == log_prompts, "prompt text in the DEBUG log" if not log_prompts else "test sees nothing"


def test_button_values_with_unicode_digits_are_not_numbers() -> None:
    """Feedback and access-request buttons carry numbers Slack echoes back: the same ASCII-digit rule."""
    from bot.slack.access_requests import request_id_from
    from bot.slack.render_answers import parse_feedback

    assert parse_feedback("up:42") == ("up", 42) and request_id_from("7") == 7
    for value in ("²", "٣", HUGE, "1\n", "-1"):
        assert parse_feedback(f"up:{value}") is None and request_id_from(value) is None
