"""`keys add … env:<VAR>` registers only a variable holding a workspace API key (docs/keys.md), through one grammar.

Anything else (a Slack token, the signing secret, DATABASE_URL, the Admin API key, PATH, an unset or empty
variable, a key with a stray character) gets one and the same answer, which tells nothing about the variable, shows
no hint of its value, and changes nothing. A key registered before this rule existed is never sent to Anthropic.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.domain.commands import ADMIN, CommandError, parse_command
from bot.domain.keys import NOT_AN_API_KEY
from bot.domain.roles import Role
from bot.slack.mrkdwn import mrkdwn
from bot.store.models import ApiKey
from bot.terminal import plain
from tests.app.test_cli import run_cli
from tests.support.fakes.anthropic import DEFAULT_ADMIN_KEY
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET, Harness

NEW_SECRET = "sk-ant-api03-registered-key-secret-Zq9X"

# variable → the value this process holds in it (None: unset)
NOT_API_KEYS: dict[str, str | None] = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_APP_TOKEN": "xapp-1-A0TEST-1234567890-abcdefabcdef0123456789",
    "DATABASE_URL": "postgresql://claude:hunter2@db.internal:5432/claude_gate",
    "ANTHROPIC_ADMIN_KEY": DEFAULT_ADMIN_KEY,
    "ADMIN_KEY_ELSEWHERE": "sk-ant-admin01-pasted-in-the-wrong-place-WxYz",
    "PATH": None,  # the real PATH of this process
    "NEVER_SET_ANYWHERE": None,
    "EMPTY_VARIABLE": "",
    "KEY_WITH_NEWLINE": NEW_SECRET + "\n",
    "KEY_WITH_PREFIX": "Bearer " + NEW_SECRET,
    "OAUTH_TOKEN": "sk-ant-oat01-an-oauth-token-not-an-api-key-AbCd",
}


def seen(answer: dict) -> str:
    return answer.get("text", "") + json.dumps(answer.get("blocks", []), ensure_ascii=False)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in NOT_API_KEYS.items():
        if name == "PATH":
            continue
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("NEW_KEY", NEW_SECRET)


async def test_every_variable_without_an_api_key_gets_the_same_answer_and_nothing_changes(
        harness_factory, environment: None) -> None:
    harness: Harness = await harness_factory(anthropic_admin_key=DEFAULT_ADMIN_KEY)
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    before = await harness.table_snapshot()
    answers = {name: await harness.command("UOWNER", ADMIN, f"keys add probe env:{name}") for name in NOT_API_KEYS}
    assert await harness.table_snapshot() == before  # nothing registered, nothing audited
    texts = {seen(answer) for answer in answers.values()}
    assert len(texts) == 1, texts  # one answer: it does not tell which variables exist or what they hold
    (text,) = texts
    assert text.startswith(":warning:") and mrkdwn(NOT_AN_API_KEY) in text
    for value in [*NOT_API_KEYS.values(), os.environ["PATH"]]:
        if value:
            assert value[-4:].strip() not in text, "a hint of the variable's value was shown"
    # the same variable holding a key is accepted, with a hint of that key only
    added = seen(await harness.command("UOWNER", ADMIN, "keys add probe env:NEW_KEY"))
    assert "Key *probe* registered" in added and "…Zq9X" in added and NEW_SECRET not in added


async def test_a_key_registered_before_the_rule_is_never_sent_to_anthropic(harness: Harness,
                                                                           environment: None) -> None:
    """An install upgraded with a Slack token registered as a key: requests use the next real key instead."""
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    async with harness.sessions.begin() as session:
        session.add(ApiKey(label="slack-token", workspace="default", env_var="SLACK_BOT_TOKEN", key_hint="…0123",
                           created_at=harness.clock() + timedelta(seconds=1), rotate_days=90, status="active",
                           created_by="UOLDADMIN"))
    await harness.mention("U1", "which key?")
    (record,) = await harness.settled_records(1)
    assert record.key_label == "default"
    assert [r["api_key"] for r in harness.anthropic.message_requests()] == [API_KEY]
    listing = seen(await admin_listing(harness))
    assert BOT_TOKEN not in listing


async def admin_listing(harness: Harness) -> dict:
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    return await harness.command("UOWNER", ADMIN, "keys")


async def test_the_one_grammar_refuses_bad_arguments_in_slack_and_in_the_shell(harness: Harness,
                                                                                tmp_path: Path,
                                                                                database_url: str) -> None:
    """`keys add` is validated once, by the command grammar, for `/claude-admin` and `claude-gate` alike."""
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    bad = {
        "bad!label env:NEW_KEY": "not a key label",
        "lab\u0435l env:NEW_KEY": "not a key label",
        "ok NEW_KEY": "must be env:<VARIABLE>",
        "ok env:NOT-A-VAR": "must be env:<VARIABLE>",
        "ok env:NEW_KEY workspace=no/slash": "not a workspace name",
        "ok env:NEW_KEY rotate_days=0": "rotate_days",
        "ok env:NEW_KEY rotate_days=3651": "rotate_days",
        "ok env:NEW_KEY rotate_days=²": "rotate_days",
        "ok env:NEW_KEY anthropic_id=bad/id": "not an Anthropic key id",
    }
    before = await harness.table_snapshot()
    for text, phrase in bad.items():
        with pytest.raises(CommandError, match=phrase):
            parse_command(ADMIN, f"keys add {text}")
        answer = await harness.command("UOWNER", ADMIN, f"keys add {text}")
        assert answer["text"].startswith(":warning:") and phrase in answer["text"], (text, answer["text"])
        assert "Usage:" in seen(answer)
    assert await harness.table_snapshot() == before
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "NEW_KEY": NEW_SECRET,
           "SLACK_BOT_TOKEN": BOT_TOKEN}
    for args, phrase in ((["bad!label", "env:NEW_KEY"], "not a key label"),
                         (["ok", "env:NEW_KEY", "rotate_days=3651"], "rotate_days"),
                         (["ok", "env:SLACK_BOT_TOKEN"], NOT_AN_API_KEY),
                         (["ok", "env:UNSET_HERE"], NOT_AN_API_KEY)):
        result = run_cli("keys", "add", *args, env=env, cwd=tmp_path)
        assert result.returncode == 2 and plain(phrase) in result.stderr.replace("`", ""), result.stderr
        assert result.stderr.splitlines()[1].startswith("Usage: claude-gate keys add <label> env:<VAR>")  # as typed
        assert result.stderr.count("\n") == 2 and "Traceback" not in result.stderr
        assert BOT_TOKEN[-4:] not in result.stderr
    assert await harness.table_snapshot() == before
    result = run_cli("keys", "add", "ok", "env:NEW_KEY", "rotate_days=30", env=env, cwd=tmp_path)
    assert result.returncode == 0 and "Key ok registered" in result.stdout, result.stderr


async def test_a_variable_that_stops_holding_a_key_is_skipped(harness: Harness, monkeypatch: pytest.MonkeyPatch,
                                                              environment: None) -> None:
    """The rule holds at every request, not only at registration: a variable later set to something else."""
    harness.slack.add_user("U1")
    harness.slack.add_user("UOWNER")
    await harness.grant("U1", Role.USER)
    await harness.grant("UOWNER", Role.OWNER)
    assert "registered" in (await harness.command("UOWNER", ADMIN, "keys add newer env:NEW_KEY"))["text"]
    monkeypatch.setenv("NEW_KEY", BOT_TOKEN)  # someone edits the environment of this process
    async with harness.sessions.begin() as session:  # (and the default key is gone, so nothing else serves)
        await session.execute(update(ApiKey).where(ApiKey.label == "default").values(status="revoked"))
    await harness.mention("U1", "hello")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "no_active_key"
    assert harness.anthropic.message_requests() == []
