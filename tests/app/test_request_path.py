"""The request path's shared pieces through the real Bolt app: who is asking (``context["requester"]``, looked up
only when used) and the one error handler (``@app.error``) turning errors into the line the user reads."""

from __future__ import annotations

import json
import logging

import pytest

from bot.domain.errors import CommandError, Denied, GateError, KeyCommandError, RoleChangeDenied
from bot.slack.payloads import asker_id
from tests.support.harness import Harness, eventually


def test_every_deliberate_error_is_a_gate_error_with_a_stable_code() -> None:
    from bot.config import ConfigError
    from bot.domain.errors import AdminApiError, AnswerNotDelivered, ClaudeFailure, CliError
    from bot.services.access.policies import PolicyValueError
    from bot.services.ports import UserGroupNotFound

    kinds = [CommandError("bad", "usage"), RoleChangeDenied("no"), KeyCommandError("k"), PolicyValueError("p"),
             UserGroupNotFound("g"), AdminApiError("a"), ConfigError("c"), CliError("x"), AnswerNotDelivered("d"),
             ClaudeFailure("timeout", "Claude took too long.")]
    codes = [error.code for error in kinds]
    assert all(isinstance(error, GateError) for error in kinds)
    assert len(set(codes)) == len(codes) and "internal" not in codes
    assert isinstance(RoleChangeDenied("no"), Denied) and ClaudeFailure("key", "m").code == "key"
    assert [error.message for error in kinds[:2]] == ["bad", "no"]


def test_the_asker_of_each_kind_of_request() -> None:
    assert asker_id({"command": "/claude", "user_id": "U1"}) == "U1"
    assert asker_id({"type": "block_actions", "user": {"id": "U2"}}) == "U2"
    assert asker_id({"event": {"type": "message", "user": "U3"}}) == "U3"
    assert asker_id({"event": {"type": "assistant_thread_started", "assistant_thread": {"user_id": "U4"}}}) == "U4"
    assert asker_id({"event": {"type": "subteam_members_changed", "subteam_id": "S1"}}) is None
    assert asker_id({"event": {"type": "message", "bot_id": "B1"}}) is None


async def test_a_channel_message_not_for_the_bot_costs_no_lookup(harness: Harness) -> None:
    harness.slack.add_user("UCHAN", name="chatty")
    harness.slack.add_user("UDM", name="dm")
    await harness.send_event({"type": "message", "channel_type": "channel", "user": "UCHAN", "text": "lunch?",
                              "ts": harness.slack.next_ts(), "channel": "C0001"})
    await harness.dm("UDM", "hello")  # its listener runs after the channel message's (scheduled first)

    def looked_up() -> list[str]:
        return [call.get("user") for call in harness.slack.calls_to("users.info")]

    await eventually(lambda: "UDM" in looked_up())
    assert "UCHAN" not in looked_up()
    assert not any("UCHAN" in json.dumps(params) for _, params in harness.slack.calls)


async def test_a_gate_error_from_any_command_is_answered_as_its_line(harness: Harness,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    harness.slack.add_user("UUSER", name="user")

    async def refuse(*_args: object) -> None:
        raise KeyCommandError("That key is busy; try again in a minute.")

    monkeypatch.setattr(harness.runtime.personal, "run", refuse)
    answer = await harness.command("UUSER", "/claude", "status")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(":warning: That key is busy; try again in a minute.")


async def test_a_fault_is_one_friendly_line_and_a_logged_traceback(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    harness.slack.add_user("UUSER", name="user")

    async def broken(*_args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(harness.runtime.personal, "run", broken)
    with caplog.at_level(logging.ERROR, logger="bot.listeners.errors"):
        answer = await harness.command("UUSER", "/claude", "status")
    assert "Something went wrong on my side" in answer["text"]
    assert "secret internals" not in json.dumps(answer)
    assert any(record.exc_info and "secret internals" in str(record.exc_info[1]) for record in caplog.records)
