"""Security: secrets never reach logs, the database or Slack; every admin subcommand is denied to non-admins."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.domain.commands import ADMIN, SUBCOMMANDS
from bot.domain.roles import Role
from bot.logging_setup import configure_logging
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET, Harness, eventually

ROOT = Path(__file__).resolve().parents[2]

# a valid text for every /claude-admin subcommand, so the refusal comes from rights, not from the grammar
VALID_ARGS = {
    "grant": "<@UNEW> user", "revoke": "<@UNEW>", "whois": "<@UNEW>", "users": "", "groups": "",
    "groups map": "<!subteam^S0ENG|@eng> user", "groups unmap": "S0ENG", "keys": "",
    "keys add": "extra env:EXTRA_KEY", "keys revoke": "default", "keys sync": "", "policy": "",
    "policy set": "user max_tokens 100", "usage": "all", "audit": "5", "reminders": "", "reminders run": "",
    "offboard": "<@UNEW>", "requests": "", "requests approve": "1 for=1d", "requests deny": "1",
    "channels": "", "channel": "<#C0100|general> off", "audit export": "days=7", "forget": "<@UNEW>",
    "budget": "", "budget set": "org monthly 5", "usage chart": "days=7", "usage reconcile": "days=2",
}
ADMIN_ONLY = [s for s in SUBCOMMANDS if s.command == ADMIN and s.right is not None]


def test_every_admin_subcommand_has_a_valid_example() -> None:
    assert {s.name for s in ADMIN_ONLY} == set(VALID_ARGS)


@pytest.mark.parametrize("role", [None, Role.USER, Role.POWER])
@pytest.mark.parametrize("name", sorted(VALID_ARGS))
async def test_non_admins_are_denied_every_admin_subcommand(harness: Harness, role: Role | None, name: str) -> None:
    harness.slack.add_user("UASKER")
    harness.slack.add_user("UNEW")
    if role is not None:
        await harness.grant("UASKER", role)
    before = await harness.table_snapshot()
    answer = await harness.command("UASKER", ADMIN, f"{name} {VALID_ARGS[name]}".strip())
    assert answer["text"].startswith(":no_entry:"), answer["text"]
    after = await harness.table_snapshot()
    new_audit = [row for row in after["audit_log"] if row not in before["audit_log"]]
    assert len(new_audit) == 1 and new_audit[0][3] == "denied"
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items()
                                                                    if k != "audit_log"}


async def test_billing_may_read_usage_and_budgets_and_nothing_else(harness: Harness) -> None:
    harness.slack.add_user("UBILL")
    harness.slack.add_user("UNEW")
    await harness.grant("UBILL", Role.BILLING)
    for name in VALID_ARGS:
        answer = await harness.command("UBILL", ADMIN, f"{name} {VALID_ARGS[name]}".strip())
        assert answer["text"].startswith(":no_entry:") == (name not in ("usage", "usage chart", "usage reconcile",
                                                                        "budget")), (
            name, answer["text"])


async def test_secrets_never_reach_logs_database_or_slack(harness_factory, capsys, monkeypatch) -> None:
    extra_key = "sk-ant-api03-extra-workspace-secret-WxYz"
    monkeypatch.setenv("EXTRA_KEY", extra_key)
    secrets = [BOT_TOKEN, SIGNING_SECRET, API_KEY, extra_key]
    # the process's real handler, at DEBUG with the payload loggers on (LOG_PROMPTS): the most that is ever logged
    configure_logging(logging.DEBUG, secrets, log_prompts=True)
    try:
        harness = await harness_factory(log_level="DEBUG")
        harness.slack.add_user("UOWNER")
        harness.slack.add_user("U1")
        await harness.grant("UOWNER", Role.OWNER)
        await harness.grant("U1", Role.POWER)
        await harness.command("UOWNER", ADMIN, "keys add extra env:EXTRA_KEY workspace=extra")
        await harness.command("UOWNER", ADMIN, "policy set power workspace extra")
        await harness.command("UOWNER", ADMIN, "keys")
        await harness.mention("U1", "hello")
        harness.anthropic.fail_next("auth")
        await harness.mention("U1", "again")
        await harness.settled_records(2)
        await eventually(lambda: len(harness.slack.posted_texts("C0001")) >= 2)
        assert any(r["api_key"] == extra_key for r in harness.anthropic.message_requests())  # the key was used
        snapshot = json.dumps(await harness.table_snapshot(), default=str)
        slack_traffic = json.dumps([params for _method, params in harness.slack.calls], default=str)
        slack_traffic += json.dumps(harness.slack.responses, default=str)
    finally:
        logging.getLogger().handlers.clear()
    logs = capsys.readouterr().err
    assert "DEBUG" in logs and "slack_sdk" in logs  # the libraries really logged at DEBUG
    for secret in secrets:
        assert secret not in logs, "a secret reached the logs"
        assert secret not in snapshot, "a secret reached the database"
        assert secret not in slack_traffic, "a secret reached Slack"


def test_database_unavailable_at_start_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))} | {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "ANTHROPIC_API_KEY": API_KEY,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/nowhere"}
    result = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "the database is not reachable" in result.stderr
    assert "Traceback" not in result.stderr
