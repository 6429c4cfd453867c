"""👍/👎 under answers: a click is recorded on the request record, by the asker only, and can be changed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from bot.domain.roles import Role
from bot.services.spend.usage import usage_summary
from bot.slack.render_answers import FEEDBACK_ACTION
from tests.support.fakes.signing import new_trigger_id
from tests.support.harness import Harness, eventually


async def answered(harness: Harness, user: str = "U1") -> tuple[Any, dict[str, Any]]:
    """Ask a question; returns (the record, the final answer's stream) once the answer is complete."""
    harness.slack.add_user(user)
    await harness.grant(user, Role.USER)
    await harness.mention(user, "rate me")
    (record,) = await harness.settled_records(1)
    (stream,) = harness.slack.streams.values()
    return record, stream


def button_value(stream: dict[str, Any], which: str) -> str:
    buttons = stream["blocks"][0]["elements"][0]
    return buttons[f"{which}_button"]["value"]


async def click(harness: Harness, user: str, stream: dict[str, Any], value: str) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "fake-verification-token",
        "container": {"type": "message", "message_ts": stream["ts"], "channel_id": stream["channel"],
                      "is_ephemeral": False, "thread_ts": stream["thread_ts"]},
        "trigger_id": new_trigger_id(),
        "team": {"id": "T0001", "domain": "fake"},
        "channel": {"id": stream["channel"], "name": "general"},
        "message": {"type": "message", "ts": stream["ts"], "thread_ts": stream["thread_ts"], "bot_id": "B0001",
                    "text": stream["text"]},
        "actions": [{"type": "feedback_buttons", "action_id": FEEDBACK_ACTION, "block_id": "feedback",
                     "value": value, "text": {"type": "plain_text", "text": "Good answer"},
                     "action_ts": "1700000000.000100"}],
    }
    status, _ = await harness.post_signed(urlencode({"payload": json.dumps(payload)}))
    assert status == 200


async def feedback_of(harness: Harness, record_id: int) -> str | None:
    return next(r.feedback for r in await harness.records() if r.id == record_id)


async def test_thumbs_up_then_down_changes_the_rating(harness: Harness) -> None:
    record, stream = await answered(harness)
    await click(harness, "U1", stream, button_value(stream, "positive"))
    await eventually(lambda: len(harness.ephemerals_for("U1")) == 1)
    assert await feedback_of(harness, record.id) == "up"
    assert ":+1:" in harness.ephemerals_for("U1")[0]["text"]
    assert harness.ephemerals_for("U1")[0]["thread_ts"] == stream["thread_ts"]
    await click(harness, "U1", stream, button_value(stream, "negative"))
    await eventually(lambda: len(harness.ephemerals_for("U1")) == 2)
    assert await feedback_of(harness, record.id) == "down"


async def test_only_the_asker_can_rate(harness: Harness) -> None:
    record, stream = await answered(harness)
    harness.slack.add_user("U2")
    await click(harness, "U2", stream, button_value(stream, "positive"))
    (reply,) = await eventually(lambda: harness.ephemerals_for("U2"))
    assert "Only the person who asked" in reply["text"]
    assert await feedback_of(harness, record.id) is None


async def test_unknown_or_forged_values_change_nothing(harness: Harness) -> None:
    record, stream = await answered(harness)
    for value in (f"up:{record.id + 100}", "sideways:1", "up:", ""):
        await click(harness, "U1", stream, value)
    await eventually(lambda: len(harness.ephemerals_for("U1")) == 4)
    assert all("cannot find" in reply["text"] for reply in harness.ephemerals_for("U1"))
    assert await feedback_of(harness, record.id) is None


async def test_usage_report_counts_the_ratings(harness: Harness) -> None:
    _record, stream = await answered(harness)
    await click(harness, "U1", stream, button_value(stream, "positive"))
    await eventually(lambda: harness.ephemerals_for("U1"))
    async with harness.sessions() as session:
        summary = await usage_summary(session, since=harness.clock() - timedelta(days=1))
    assert (summary.thumbs_up, summary.thumbs_down) == (1, 0)
