"""LOG_FORMAT=json: one JSON object a line with time, level, logger, message, and the request's record id and Slack
event id where known; text stays the default; no secret in any line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from bot.config import Settings
from bot.domain.roles import Role
from bot.logging_setup import configure_logging
from tests.app.test_cli import run_cli
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET


@pytest.fixture
def json_logs(capsys):
    """Call it to start: the process's real handler, writing JSON lines to stderr (configured inside the test, where
    capsys's stderr stays open); call what it returns to read the lines, each parsed."""

    def start() -> Callable[[], list[dict]]:
        configure_logging(logging.INFO, [BOT_TOKEN, SIGNING_SECRET, API_KEY], log_format="json")
        capsys.readouterr()
        return lambda: [json.loads(line) for line in capsys.readouterr().err.splitlines()]  # every line parses

    yield start
    logging.getLogger().handlers.clear()


async def test_a_failed_answer_logs_one_json_line_naming_its_record_and_event(harness_factory, json_logs) -> None:
    harness = await harness_factory()
    read_lines = json_logs()
    harness.slack.add_user("UJSON")
    await harness.grant("UJSON", Role.POWER)
    harness.anthropic.fail_next("invalid_request")
    event_id = "Ev0JSONLOGS1"
    await harness.mention("UJSON", "hello", event_id=event_id)
    record = (await harness.settled_records(1, timeout=30))[0]
    logging.getLogger("bot.test").error("with a traceback", exc_info=ValueError(f"boom {API_KEY}"))
    lines = read_lines()
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0
    failed = [line for line in lines if line["message"].startswith(f"answer for record {record.id} failed")]
    assert len(failed) == 1, lines
    assert failed[0]["level"] == "WARNING" and failed[0]["logger"] == "bot.services.conversation.chat"
    assert failed[0]["record_id"] == record.id and failed[0]["event_id"] == event_id
    traced = next(line for line in lines if line["message"] == "with a traceback")
    assert "ValueError: boom [redacted]" in traced["exception"] and "record_id" not in traced
    text = json.dumps(lines)
    for secret in (BOT_TOKEN, SIGNING_SECRET, API_KEY):
        assert secret not in text


async def test_two_requests_at_once_keep_their_own_ids(harness_factory, json_logs) -> None:
    harness = await harness_factory()
    read_lines = json_logs()
    for user in ("UONE", "UTWO"):
        harness.slack.add_user(user)
        await harness.grant(user, Role.POWER)
    harness.anthropic.fail_next("invalid_request", times=2)
    await asyncio.gather(harness.mention("UONE", "first", event_id="Ev0FIRST"),
                         harness.mention("UTWO", "second", event_id="Ev0SECOND"))
    records = {r.slack_user_id: r.id for r in await harness.settled_records(2, timeout=30)}
    failed = {line["event_id"]: line["record_id"] for line in read_lines() if "failed:" in line["message"]}
    assert failed == {"Ev0FIRST": records["UONE"], "Ev0SECOND": records["UTWO"]}


def test_text_is_the_default_and_json_is_chosen_by_setting(tmp_path: Path, database_url: str) -> None:
    assert Settings().log_format == "text"
    assert Settings(log_format="JSON").log_format == "json"
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "DEBUG"}
    text = run_cli("users", env=env, cwd=tmp_path)
    assert text.returncode == 0 and text.stderr and not text.stderr.lstrip().startswith("{")
    as_json = run_cli("users", env=env | {"LOG_FORMAT": "json"}, cwd=tmp_path)
    lines = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert lines and all(line["level"] in ("DEBUG", "INFO", "WARNING") for line in lines)
    bad = run_cli("users", env=env | {"LOG_FORMAT": "xml"}, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("claude-gate: Invalid setting LOG_FORMAT") and "text or json" \
        in bad.stderr
