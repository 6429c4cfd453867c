"""The message shortcuts' Slack side without Slack: the message in a view's private_metadata, the modal's limits, and
what a message_action payload must hold."""

from __future__ import annotations

import json

import pytest

from bot.slack.render_shortcuts import (
    METADATA_LIMIT,
    QUESTION_ACTION,
    QUESTION_BLOCK,
    TITLE_LIMIT,
    QuotedMessage,
    question_modal,
    shortcut_message,
    submitted_question,
)


@pytest.mark.parametrize("text", ["short", "é" * 5000, '"\\' * 3000, "\n".join(["line"] * 2000), "🙂" * 4000])
def test_the_message_fits_private_metadata_and_comes_back(text: str) -> None:
    message = QuotedMessage("C0042", "1700000000.000100", "1700000000.000001", "ana", text)
    metadata = message.metadata()
    assert len(metadata) <= METADATA_LIMIT
    back = QuotedMessage.from_metadata(metadata)
    assert back is not None and (back.channel_id, back.ts, back.thread_ts, back.author) == (
        "C0042", "1700000000.000100", "1700000000.000001", "ana")
    assert back.cut is (text != "short")  # every other one is longer than a view may carry
    assert text.startswith(back.text.rstrip("…")) or back.text == "…"


@pytest.mark.parametrize("metadata", [None, "", "not json", "[]", json.dumps({"channel_id": "DU1", "ts": "1.2"}),
                                      json.dumps({"channel_id": "C1", "ts": "x"}),
                                      json.dumps({"channel_id": "C1", "ts": "1.2", "text": 5})])
def test_metadata_the_app_did_not_write_is_refused(metadata: str | None) -> None:
    assert QuotedMessage.from_metadata(metadata) is None


def test_the_modal_keeps_to_slacks_view_limits() -> None:
    view = question_modal(QuotedMessage("C0042", "1.2", "1.2", "ana", "x" * 40_000))
    assert all(len(view[key]["text"]) <= TITLE_LIMIT for key in ("title", "submit", "close"))
    assert len(view["private_metadata"]) <= METADATA_LIMIT
    assert all(len(block["text"]["text"]) <= 3000 for block in view["blocks"] if block["type"] == "section")
    state = {"values": {QUESTION_BLOCK: {QUESTION_ACTION: {"type": "plain_text_input", "value": "  why?  "}}}}
    assert submitted_question({"state": state}) == "why?" and submitted_question({}) == ""


def test_a_shortcut_on_a_message_outside_a_channel_or_malformed_is_not_taken() -> None:
    message = {"ts": "1700000000.000100", "text": "hi", "user": "U2"}
    assert shortcut_message({"message": message, "channel": {"id": "C0042"}}) == (
        "C0042", "1700000000.000100", "1700000000.000100", "U2", "hi")
    assert shortcut_message({"message": {**message, "thread_ts": "1700000000.000001"},
                             "channel": {"id": "G0042"}})[2] == "1700000000.000001"  # type: ignore[index]
    for body in ({"message": message, "channel": {"id": "DU1"}}, {"message": message},
                 {"message": {**message, "ts": 5}, "channel": {"id": "C1"}}, {"channel": {"id": "C1"}},
                 {"message": {**message, "text": ["x"]}, "channel": {"id": "C1"}}):
        assert shortcut_message(body) is None
