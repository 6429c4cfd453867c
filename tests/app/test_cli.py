"""The `claude-gate` command line, run as a real process."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.harness import API_KEY, BOT_TOKEN, Harness

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL", "BOOTSTRAP", "DEFAULT_ROLE"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], env=clean | (env or {}), cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


# `serve` without credentials, with a port in use, or an unreachable database: tests/processes/test_startup.py


@pytest.mark.parametrize(("variable", "value"), [
    ("DEFAULT_ROLE", "emperor"), ("REMINDER_CRON", "every day"), ("REMINDER_TZ", "Mars/Olympus"),
    ("PORT", "http"), ("ROTATION_DAYS", "0"), ("LOG_LEVEL", "LOUD"), ("ALLOW_GUESTS", "perhaps"),
    ("MODEL_PRICES", "cheap"), ("MODEL_PRICES", '{"opus": [1]}'),
])
def test_invalid_setting_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                           variable: str, value: str) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    assert main(["users"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"claude-gate: Invalid setting {variable}")


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DEFAULT_ROLE=emperor\n")
    result = run_cli("users", cwd=tmp_path)
    assert "Invalid setting DEFAULT_ROLE" in result.stderr


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = run_cli("users", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("claude-gate: the database is not reachable")
    assert "Traceback" not in result.stderr


def test_grant_users_revoke_and_the_last_owner(tmp_path: Path, database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    granted = run_cli("grant", "<@U0OWNER|olga>", "owner", env=env, cwd=tmp_path)
    assert granted.stdout.startswith("✓ U0OWNER now has the role owner.\n"), granted.stderr
    assert granted.stderr == "(SLACK_BOT_TOKEN is not set: U0OWNER was not sent a DM)\n"
    assert "Slack was not asked about this user (SLACK_BOT_TOKEN is not set)" in granted.stdout
    assert run_cli("grant", "U0USER", "power", env=env, cwd=tmp_path).returncode == 0
    listing = run_cli("users", env=env, cwd=tmp_path).stdout
    assert "U0OWNER · owner · by cli on " in listing and "U0USER · power · by cli on " in listing
    assert run_cli("users", "power", env=env, cwd=tmp_path).stdout.count("U0") == 1
    refused = run_cli("revoke", "U0OWNER", env=env, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == "✗ That is the last owner: grant owner to someone else first.\n"
    assert "cli denied U0OWNER (command=revoke" in run_cli("audit", "1", env=env, cwd=tmp_path).stdout  # as in Slack
    revoked = run_cli("revoke", "U0USER", env=env, cwd=tmp_path)
    assert revoked.stdout.startswith("✓ U0USER no longer has the role power.\n")
    bad = run_cli("grant", "not-a-user", "power", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "not-a-user is not a Slack user ID (like U012ABCDEF)" in bad.stderr
    assert run_cli("grant", "U0X", "emperor", env=env, cwd=tmp_path).returncode == 2


def test_manifest_is_complete(tmp_path: Path) -> None:
    http = json.loads(run_cli("manifest", "--url", "https://gate.example.com", cwd=tmp_path).stdout)
    assert http["settings"]["event_subscriptions"]["request_url"] == "https://gate.example.com/slack/events"
    assert http["settings"]["socket_mode_enabled"] is False
    assert {c["command"] for c in http["features"]["slash_commands"]} == {"/claude-admin", "/claude"}
    assert {"app_mention", "message.im", "app_home_opened", "app_context_changed"} <= set(
        http["settings"]["event_subscriptions"]["bot_events"])
    assert http["features"]["agent_view"]["agent_description"] and "assistant_view" not in http["features"]
    assert http["settings"]["org_deploy_enabled"] is False
    assert {"app_mentions:read", "chat:write", "users:read", "im:history", "commands"} <= set(
        http["oauth_config"]["scopes"]["bot"])
    socket = json.loads(run_cli("manifest", "--socket", cwd=tmp_path).stdout)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    panel = json.loads(run_cli("manifest", "--socket", "--assistant-view", "--org", cwd=tmp_path).stdout)
    assert "agent_view" not in panel["features"] and panel["features"]["assistant_view"]["assistant_description"]
    assert "assistant_thread_started" in panel["settings"]["event_subscriptions"]["bot_events"]
    assert panel["settings"]["org_deploy_enabled"] is True


def test_chat_as_goes_through_the_gate(tmp_path: Path, database_url: str, fake_slack, fake_anthropic) -> None:
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
           "SLACK_BOT_TOKEN": "xoxb-cli", "SLACK_API_URL": fake_slack.api_url}
    fake_slack.add_user("U0CLI")
    refused = run_cli("chat", "--as", "U0CLI", "hello", env=env, cwd=tmp_path)
    assert refused.returncode == 3 and "refused: Your role viewer cannot ask Claude" in refused.stderr
    run_cli("grant", "U0CLI", "user", env=env, cwd=tmp_path)
    answered = run_cli("chat", "--as", "U0CLI", "hello", "there", env=env, cwd=tmp_path)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == "Echo: hello there\n"
    assert fake_anthropic.last_body()["max_tokens"] == 512
    not_allowed = run_cli("chat", "--as", "U0CLI", "--model", "opus", "hi", env=env, cwd=tmp_path)
    assert not_allowed.returncode == 3 and "may not use opus" in not_allowed.stderr


def test_bootstrap_owners_become_owners_once(tmp_path: Path, database_url: str, fake_slack, fake_anthropic) -> None:
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
           "BOOTSTRAP_OWNERS": "U0BOSS, U0DEPUTY"}
    result = run_cli("chat", "--as", "U0BOSS", "hi", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = run_cli("users", "owner", env=env, cwd=tmp_path).stdout
    assert "U0BOSS" in listing and "U0DEPUTY" in listing
    run_cli("revoke", "U0DEPUTY", env=env, cwd=tmp_path)
    run_cli("chat", "--as", "U0BOSS", "hi", env=env, cwd=tmp_path)  # an owner exists: nothing re-granted
    assert "U0DEPUTY" not in run_cli("users", env=env, cwd=tmp_path).stdout


def test_policy_usage_and_audit_from_the_shell(tmp_path: Path, database_url: str, fake_anthropic) -> None:
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url}
    changed = run_cli("policy", "set", "user", "max_tokens", "300", env=env, cwd=tmp_path)
    assert changed.returncode == 0 and "user max_tokens: 512 → 300" in changed.stdout
    bad = run_cli("policy", "set", "user", "max_tokens", "lots", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "max_tokens must be a whole number" in bad.stderr
    assert "max_tokens 300" in run_cli("policy", "user", env=env, cwd=tmp_path).stdout
    run_cli("grant", "U0CSV", "user", env=env, cwd=tmp_path)
    assert run_cli("chat", "--as", "U0CSV", "hello", env=env, cwd=tmp_path).returncode == 0
    rows = run_cli("usage", "--csv", "--days", "1", env=env, cwd=tmp_path).stdout.splitlines()
    assert rows[0].startswith("slack_user_id,requests,refused") and rows[1].startswith("U0CSV,1,0,0,")
    assert "1 request · 0 refused" in run_cli("usage", "U0CSV", env=env, cwd=tmp_path).stdout
    audit = run_cli("audit", "5", env=env, cwd=tmp_path).stdout
    assert "cli policy.set user" in audit and "cli grant U0CSV" in audit


def test_role_commands_do_not_import_the_anthropic_sdk() -> None:
    """`import anthropic` takes seconds; `grant`, `users`, `db upgrade` and reports never call Anthropic. The model
    defaults come from the SDK's data module alone, and are the ones the whole SDK declares."""
    probe = ("import sys, typing\n"
             "import bot.cli, bot.cli.admin, bot.cli.exports, bot.cli.program, bot.services.access.roles\n"
             "import bot.store.migrate\n"
             "from bot.config import Settings\n"
             "from bot.domain.models import newest_known_models\nfrom bot.sdk_models import sdk_model_ids\n"
             "assert 'anthropic' not in sys.modules, 'the command line imported the Anthropic SDK'\n"
             "ids = sdk_model_ids()\n"
             "from anthropic.types import ModelParam\n"
             "full = [a for arg in typing.get_args(ModelParam) for a in typing.get_args(arg) if isinstance(a, str)]\n"
             "assert ids == full and newest_known_models(ids), (ids, full)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`claude-gate manifest | head -1`: the reader is gone before the command writes; no traceback."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))}
    process = subprocess.Popen([sys.executable, "-m", "bot", "manifest"], cwd=tmp_path, env=clean,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `head` exits
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr  # 128 + SIGPIPE, as for `cat`
    assert stderr == ""


def test_chat_prints_no_library_chatter_unless_debug(tmp_path: Path, database_url: str, fake_slack,
                                                     fake_anthropic) -> None:
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
           "SLACK_BOT_TOKEN": "xoxb-cli", "SLACK_API_URL": fake_slack.api_url}
    fake_slack.add_user("U0QUIET")
    run_cli("grant", "U0QUIET", "user", env=env, cwd=tmp_path)
    quiet = run_cli("chat", "--as", "U0QUIET", "a secret plan", env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "Echo: a secret plan\n"
    assert quiet.stderr == ""  # no "As you gave `client` as well…", no httpx "HTTP Request: POST …"
    debug = run_cli("chat", "--as", "U0QUIET", "a secret plan", env=env | {"LOG_LEVEL": "DEBUG"}, cwd=tmp_path)
    assert "HTTP Request: POST" in debug.stderr and "As you gave" not in debug.stderr
    assert "a secret plan" not in debug.stderr  # the payload loggers need LOG_PROMPTS=true as well
    payloads = run_cli("chat", "--as", "U0QUIET", "a secret plan",
                       env=env | {"LOG_LEVEL": "DEBUG", "LOG_PROMPTS": "true"}, cwd=tmp_path)
    assert "a secret plan" in payloads.stderr
    assert API_KEY not in debug.stderr + payloads.stderr


def test_terminal_output_has_no_slack_markup() -> None:
    from bot.domain.replies import Reply
    from bot.services.spend.commands import usage_lines
    from bot.services.spend.usage import UsageSummary
    from bot.terminal import plain, render_reply, table

    summary = UsageSummary(since=datetime.now(UTC), requests=3, input_tokens=10, output_tokens=20, cost_micros=500_000,
                           refusals={"rpm": 1}, thumbs_up=2, thumbs_down=1, top_users=[("U0ANA", 3, 0.5)])
    text = render_reply(Reply(title=":bar_chart: *Usage*, last 7 days", lines=usage_lines(summary),
                              fields=[("Role", "`power`"), ("Requests left this minute", "59")]))
    assert ":+1:" not in text and "*" not in text and "`" not in text and "<@" not in text
    assert "Feedback: 👍 2 · 👎 1" in text and "Top users: U0ANA 3 req $0.50" in text
    assert text.splitlines()[0] == "Usage, last 7 days"
    assert "Role:                       power" in text  # fields in aligned columns
    assert plain("<https://example.com|the docs> at 10:30:00, <!here> <#C1|general> &lt;b&gt; max_tokens "
                 "_why_ ~old~") == "the docs (https://example.com) at 10:30:00, @here #general <b> max_tokens why old"
    assert table([("a", "bbb", "c"), ("dddd", "e", "f")], header=("x", "y", "z")).splitlines() == [
        "x     y    z", "a     bbb  c", "dddd  e    f"]


def test_chat_without_a_slack_token_never_calls_slack(tmp_path: Path, database_url: str, fake_slack,
                                                      fake_anthropic) -> None:
    """The shell has no Slack: a blocked secret's alert (a DM to each owner, ADMIN_ALERT_CHANNEL unset) is not
    attempted, so no call waits on Slack and no retry line is printed."""
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
           "SLACK_API_URL": fake_slack.api_url, "BOOTSTRAP_OWNERS": "U0BOSS"}
    run_cli("grant", "U0ASKS", "user", env=env, cwd=tmp_path)
    secret = "AK" + "IA" + "Q3EGUFZK7XMPL4RT"  # assembled: no whole key in the source
    refused = run_cli("chat", "--as", "U0ASKS", f"is {secret} still valid?", env=env, cwd=tmp_path)
    assert refused.returncode == 3 and "refused: Your message contains an AWS access key" in refused.stderr
    assert fake_slack.calls == []
    assert "retry" not in refused.stderr and "could not" not in refused.stderr
    assert fake_anthropic.message_requests() == []


def test_slack_sdk_retry_notices_only_at_debug(tmp_path: Path, database_url: str, fake_anthropic) -> None:
    """slack_sdk writes "A retry handler found: …" at INFO for every retry of an unreachable Slack."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
           "SLACK_BOT_TOKEN": "xoxb-cli", "SLACK_API_URL": f"http://127.0.0.1:{port}/api/"}
    quiet = run_cli("chat", "--as", "U0NET", "hello", env=env, cwd=tmp_path)
    assert quiet.returncode == 3 and "users.info failed" in quiet.stderr  # refused: the profile cannot be read
    assert "retry handler" not in quiet.stderr
    debug = run_cli("chat", "--as", "U0NET", "hello", env=env | {"LOG_LEVEL": "DEBUG"}, cwd=tmp_path)
    assert "A retry handler found: AsyncConnectionErrorRetryHandler" in debug.stderr


def test_a_shell_command_never_creates_a_database(tmp_path: Path, fake_anthropic) -> None:
    """`usage chart` run from another directory made an empty claude_gate.db there and reported no spend."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / ".env").write_text(f"ANTHROPIC_API_KEY={API_KEY}\n")
    assert run_cli("db", "upgrade", cwd=project).returncode == 0  # the default sqlite:///claude_gate.db, made here
    assert (project / "claude_gate.db").is_file()
    assert run_cli("users", cwd=project).stdout == "0 users with an explicit role\nNobody yet.\n"
    for command in (["usage", "chart"], ["users"], ["grant", "U0NEW", "user"], ["chat", "--as", "U0NEW", "hi"]):
        result = run_cli(*command, env={"ANTHROPIC_API_KEY": API_KEY}, cwd=elsewhere)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr == (f"claude-gate: no database at {elsewhere / 'claude_gate.db'}: run claude-gate db "
                                 "upgrade (or serve) to create it, or set DATABASE_URL (a relative SQLite path is "
                                 "read against the directory holding .env, else the current one)\n"), command
    assert list(elsewhere.iterdir()) == []


def test_a_relative_sqlite_path_is_read_against_the_directory_holding_env(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import load_settings

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / ".env").write_text("DATABASE_URL=sqlite:///data/gate.db\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(elsewhere)
    assert load_settings(env_file=project / ".env").database_url == f"sqlite:///{project}/data/gate.db"
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///gate.db")
    assert load_settings(env_file=None).database_url == f"sqlite+aiosqlite:///{elsewhere}/gate.db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://gate@127.0.0.1/gate")
    assert load_settings(env_file=None).database_url == "postgresql://gate@127.0.0.1/gate"


@pytest.mark.parametrize("given", ["gate.example.com", "https://gate.example.com/", "https://gate.example.com/slack/events",
                                   " gate.example.com/slack/events/ "])
def test_manifest_url_is_the_base_however_it_is_typed(tmp_path: Path, given: str) -> None:
    manifest = json.loads(run_cli("manifest", "--url", given, cwd=tmp_path).stdout)
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://gate.example.com/slack/events"
    assert manifest["settings"]["interactivity"]["request_url"] == "https://gate.example.com/slack/events"


def test_version_is_printed(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "claude-gate 0.1.0\n"  # pyproject.toml's version


def test_db_upgrade_says_what_it_migrated(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'gate.db'}"}
    first = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("the database was migrated from revision none (a new database) to ")
    again = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    head = first.stdout.strip().rsplit(" ", 1)[1]
    assert again.stdout == f"the database is up to date (revision {head})\n"


def test_chat_with_nothing_to_ask_is_refused_before_claude(tmp_path: Path, database_url: str, fake_anthropic) -> None:
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url}
    result = run_cli("chat", "--as", "U0USER", " ", env=env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("claude-gate: nothing to ask")
    assert result.stderr.count("\n") == 1
    assert fake_anthropic.requests == []


@pytest.mark.parametrize(("variable", "value", "line"), [
    ("ROTATION_DAYS", "ninety", "Invalid setting ROTATION_DAYS: 'ninety' is not a whole number."),
    ("ROTATION_DAYS", "0", "Invalid setting ROTATION_DAYS: '0' is too small: it must be at least 1."),
    ("ALLOW_GUESTS", "perhaps", "Invalid setting ALLOW_GUESTS: 'perhaps' is not true or false (true/false, yes/no, "
                                "on/off or 1/0)."),
])
def test_a_setting_error_names_the_value_and_what_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                              variable: str, value: str, line: str) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    assert main(["users"]) == 2
    assert capsys.readouterr().err == f"claude-gate: {line}\n"


# -- every /claude-admin subcommand, through the one dispatcher as the shell ------------------------------------

def same_text(text: str) -> str:
    """Compare answers without the alignment spaces and the command's spelling (/claude-admin or claude-gate)."""
    text = text.replace("/claude-admin ", "claude-gate ")
    return "\n".join(re.sub(r"\s+", " ", line).strip() for line in text.strip().splitlines())


async def cli(harness: Harness, tmp_path: Path, *words: str, slack: bool = True) -> subprocess.CompletedProcess:
    env = {"DATABASE_URL": harness.runtime.settings.database_url}
    if slack:
        env |= {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": harness.slack.api_url}
    return await asyncio.to_thread(run_cli, *words, env=env, cwd=tmp_path)


async def slash(harness: Harness, text: str) -> str:
    from bot.domain.commands import ADMIN
    from bot.terminal import blocks_text

    answer = await harness.command("UOWNER", ADMIN, text)
    return blocks_text(answer["blocks"])


@pytest.fixture
async def owner_harness(harness: Harness) -> Harness:
    from bot.domain.roles import Role

    for user in ("UOWNER", "UANA", "UBEN"):
        harness.slack.add_user(user, email=f"{user.lower()}@example.com")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.grant("UANA", Role.POWER)
    await harness.grant("UBEN", Role.USER)
    harness.slack.add_usergroup("S0ENG", "eng", ["UANA", "UBEN"])
    return harness


@pytest.mark.parametrize("words", ["whois UANA", "groups", "reminders"])
async def test_a_reading_command_answers_as_in_slack(owner_harness: Harness, tmp_path: Path, words: str) -> None:
    in_slack = await slash(owner_harness, words)
    in_shell = await cli(owner_harness, tmp_path, *words.split())
    assert in_shell.returncode == 0, in_shell.stderr
    assert same_text(in_shell.stdout) == same_text(in_slack)
    assert shell_text(in_shell.stdout)


async def test_groups_map_and_unmap_from_the_shell_as_in_slack(owner_harness: Harness, tmp_path: Path) -> None:
    from sqlalchemy import select

    from bot.store.models import GroupRoleMapping

    mapped = await cli(owner_harness, tmp_path, "groups", "map", "@eng", "power")
    assert mapped.returncode == 0, mapped.stderr
    async with owner_harness.sessions() as session:
        mapping = (await session.scalars(select(GroupRoleMapping))).one()
        assert (mapping.usergroup_id, mapping.role) == ("S0ENG", "power")
    unmapped = await cli(owner_harness, tmp_path, "groups", "unmap", "S0ENG")
    assert unmapped.returncode == 0, unmapped.stderr
    remapped_in_slack = await slash(owner_harness, "groups map @eng power")
    assert same_text(remapped_in_slack) == same_text(mapped.stdout)
    audit = [(e.actor, e.action) for e in await owner_harness.audit()]
    assert ("cli", "groups.map") in audit and ("cli", "groups.unmap") in audit and ("UOWNER", "groups.map") in audit


async def test_offboard_from_the_shell_as_in_slack(owner_harness: Harness, tmp_path: Path) -> None:
    from bot.domain.roles import Role

    await owner_harness.grant("UBEN", Role.POWER)  # the twins differ only in who
    in_shell = await cli(owner_harness, tmp_path, "offboard", "UANA")
    assert in_shell.returncode == 0, in_shell.stderr
    in_slack = await slash(owner_harness, "offboard UBEN")
    assert same_text(in_shell.stdout.replace("UANA", "UBEN")) == same_text(in_slack)
    audit = [(e.actor, e.action, e.target) for e in await owner_harness.audit()]
    assert ("cli", "offboard", "UANA") in audit and ("UOWNER", "offboard", "UBEN") in audit
    assert not [e for e in await owner_harness.audit() if e.actor == "shell"]


async def test_commands_that_need_slack_say_so(owner_harness: Harness, tmp_path: Path) -> None:
    for words in (("offboard", "UANA"), ("groups", "map", "@eng", "power"), ("reminders", "run"), ("remind", "--now")):
        result = await cli(owner_harness, tmp_path, *words, slack=False)
        assert result.returncode == 2 and "needs Slack" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
        assert result.stderr.count("\n") == 1
    assert (await cli(owner_harness, tmp_path, "whois", "UANA", slack=False)).returncode == 0  # reading needs none


async def test_bad_words_get_the_usage_and_change_nothing(owner_harness: Harness, tmp_path: Path) -> None:
    before = await owner_harness.table_snapshot()
    result = await cli(owner_harness, tmp_path, "whois", "nobody")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "! nobody is not a Slack user ID (like U012ABCDEF).\nUsage: claude-gate whois <user-id>\n"
    twice = await cli(owner_harness, tmp_path, "usage", "days=14")  # the shell adds no days= of its own
    assert twice.returncode == 0 and twice.stdout.startswith("Usage of everyone, last 14 days"), twice.stderr
    both = await cli(owner_harness, tmp_path, "usage", "days=14", "--days", "3")
    assert both.returncode == 2 and "days= is given twice" in both.stderr
    for words, line in ((("channel", "Gen eral!"), "claude-gate: 'Gen' is not a channel: give its name"),
                        (("whois", "UANA", "--out", str(tmp_path / "no" / "such.txt")), "claude-gate: cannot use "),
                        (("channel",), "! Missing channel."),  # `claude-gate channel #general`: bash drops #…
                        (("audit", "lots"), "! lots is not a whole number")):
        bad = await cli(owner_harness, tmp_path, *words)
        assert bad.returncode == 2 and bad.stderr.startswith(line) and "Traceback" not in bad.stderr, bad.stderr
    assert await owner_harness.table_snapshot() == before


async def test_a_channel_by_its_name_without_the_hash(owner_harness: Harness, tmp_path: Path) -> None:
    """Bash reads `#general` as a comment: the shell takes `general` (or a quoted '#general') and finds its ID
    among the channels with settings, else in Slack's conversations.list."""
    from bot.store.models import ChannelSetting

    owner_harness.slack.channels["C0GEN"] = {"id": "C0GEN", "name": "general", "is_channel": True,
                                            "is_private": False, "is_member": True, "is_archived": False}
    owner_harness.slack.channels["C0OLD"] = {"id": "C0OLD", "name": "old", "is_channel": True,
                                            "is_private": False, "is_member": True, "is_archived": True}
    off = await cli(owner_harness, tmp_path, "channel", "general", "off")
    assert off.returncode == 0, off.stderr
    assert owner_harness.slack.calls_to("conversations.list")[-1]["exclude_archived"] in (True, "true", "1")
    async with owner_harness.runtime.db.sessions() as session:
        row = await session.get(ChannelSetting, "C0GEN")
    assert row is not None and row.enabled is False and row.name == "general"
    stored = await cli(owner_harness, tmp_path, "channel", "#general", "on", slack=False)  # by its stored name
    assert stored.returncode == 0, stored.stderr
    async with owner_harness.runtime.db.sessions() as session:
        assert (await session.get(ChannelSetting, "C0GEN")).enabled is True
    before = await owner_harness.table_snapshot()
    for words, slack, line in ((("old", "off"), True, "claude-gate: Slack has no channel named old"),
                               (("random",), False, "claude-gate: no channel named random has settings here")):
        bad = await cli(owner_harness, tmp_path, "channel", *words, slack=slack)
        assert bad.returncode == 2 and bad.stderr.startswith(line) and bad.stderr.count("\n") == 1, bad.stderr
    assert await owner_harness.table_snapshot() == before


async def test_json_and_out(owner_harness: Harness, tmp_path: Path) -> None:
    as_json = json.loads((await cli(owner_harness, tmp_path, "whois", "UANA", "--json")).stdout)
    assert as_json["kind"] == "Reply" and as_json["title"] == "UANA (uana)"
    assert ["Role", "power (from an explicit grant)"] in as_json["fields"]
    users = json.loads((await cli(owner_harness, tmp_path, "users", "--json")).stdout)
    assert users["kind"] == "Reply" and any(line.startswith("UANA · power") for line in users["lines"])
    out = tmp_path / "reminders.txt"
    written = await cli(owner_harness, tmp_path, "reminders", "--out", str(out))
    assert written.returncode == 0 and written.stdout == "" and "wrote" in written.stderr
    assert same_text(out.read_text()) == same_text(await slash(owner_harness, "reminders"))


async def test_audit_and_usage_export_since_a_date(harness: Harness, tmp_path: Path) -> None:
    """`claude-gate audit|usage --since <date> --format jsonl|csv [--out FILE]`: every row since then, for SIEM and
    finance; request records carry numbers and outcomes, never prompt text."""
    import csv

    from bot.services.data.audit import add_audit
    from bot.store.models import RequestRecord

    old, new = datetime(2026, 10, 30, 23, 0, tzinfo=UTC), datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    async with harness.sessions.begin() as session:
        add_audit(session, at=old, actor="UOLD", action="grant", target="U1", role="user")
        add_audit(session, at=new, actor="UNEW", action="policy.set", target="user", field="max_tokens")
        for at, user in ((old, "UOLD"), (new, "UNEW")):
            session.add(RequestRecord(created_at=at, slack_user_id=user, role="power", model="claude-x",
                                      input_tokens=10, output_tokens=20, cost_micros=500_000, admitted=True,
                                      outcome="ok", surface="dm", prompt="a private question", thread_ts="1.2"))
    audit = await cli(harness, tmp_path, "audit", "--since", "2026-11-01", slack=False)
    assert audit.returncode == 0, audit.stderr
    rows = [json.loads(line) for line in audit.stdout.splitlines()]  # and the app's own start-up rows, of today
    ours = [r for r in rows if r["actor"] in ("UOLD", "UNEW")]
    assert [(r["actor"], r["action"], r["detail"]) for r in ours] == [("UNEW", "policy.set", {"field": "max_tokens"})]
    assert ours[0]["at"].startswith("2026-11-02T08:30:00")
    out = tmp_path / "usage.csv"
    usage = await cli(harness, tmp_path, "usage", "--since", "2026-10-30T22:00:00+00:00", "--format", "csv",
                      "--out", str(out), slack=False)
    assert usage.returncode == 0 and usage.stdout == "" and "wrote 2 rows" in usage.stderr
    records = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["slack_user_id"] for r in records] == ["UOLD", "UNEW"] and records[0]["output_tokens"] == "20"
    assert "prompt" not in records[0] and "a private question" not in out.read_text()
    bad = await cli(harness, tmp_path, "audit", "--since", "last week", slack=False)
    assert bad.returncode == 2 and bad.stderr.startswith("claude-gate: --since 'last week' is not a date")


# -- `claude-gate help`: exactly what the shell runs, each verb run from a fresh database ------------------------

def shell_text(text: str) -> bool:
    """Text for a terminal: no mark characters, emoji codes, mrkdwn bold, backticks, or the Slack command."""
    return not (re.search("[\ue000-\ue003]", text) or re.search(r"(?<![\w:]):[a-z_+-]+:(?![\w:])", text)
                or re.search(r"(?<![\w*])\*\w[^*\n]*\*", text) or "`" in text or "/claude-admin" in text)


# One run of each verb `claude-gate help` lists, in order, from a fresh database, and the exit status it ends with
# (a request that does not exist, a key sync without an Admin key, a chart of no spend: refused, in shell words).
EVERY_VERB: list[tuple[str, tuple[str, ...], int]] = [
    ("help", ("help",), 0),
    ("db upgrade", ("db", "upgrade"), 0),
    ("grant", ("grant", "U0ANA", "power", "--for", "7d"), 0),
    ("requests", ("requests",), 0),
    ("requests approve", ("requests", "approve", "1"), 2),
    ("requests deny", ("requests", "deny", "1"), 2),
    ("whois", ("whois", "U0ANA"), 0),
    ("users", ("users", "power"), 0),
    ("groups map", ("groups", "map", "@eng", "power"), 0),
    ("groups", ("groups",), 0),
    ("groups unmap", ("groups", "unmap", "S0ENG"), 0),
    ("keys add", ("keys", "add", "ci", "env:CI_KEY", "--workspace", "ci"), 0),
    ("keys", ("keys",), 0),
    ("keys sync", ("keys", "sync"), 2),
    ("policy", ("policy", "user"), 0),
    ("policy set", ("policy", "set", "user", "max_tokens", "300"), 0),
    ("budget set", ("budget", "set", "org", "monthly", "5"), 0),
    ("budget", ("budget",), 0),
    ("chat", ("chat", "--as", "U0ANA", "hello"), 0),
    ("usage", ("usage", "U0ANA", "--days", "3"), 0),
    ("usage chart", ("usage", "chart", "--out", "cost.png"), 0),
    ("usage reconcile", ("usage", "reconcile"), 2),  # without ANTHROPIC_ADMIN_KEY: one line saying so
    ("reconcile", ("reconcile", "--days", "2"), 2),
    ("usage --csv", ("usage", "--csv"), 0),
    ("usage|audit --since", ("audit", "--since", "2020-01-01"), 0),
    ("audit", ("audit", "5"), 0),
    ("audit export", ("audit", "export", "--out", "audit.jsonl"), 0),
    ("reminders", ("reminders",), 0),
    ("reminders run", ("reminders", "run"), 0),
    ("remind", ("remind",), 0),
    ("keys revoke", ("keys", "revoke", "ci"), 0),
    ("channels", ("channels",), 0),
    ("channel", ("channel", "C0777", "off"), 0),
    ("forget", ("forget", "U0BEN"), 0),
    ("offboard", ("offboard", "U0BEN"), 0),
    ("revoke", ("revoke", "U0ANA"), 0),
    ("purge", ("purge", "--now"), 0),
    ("purge", ("purge",), 0),
    ("manifest", ("manifest", "--socket"), 0),
    ("models", ("models",), 0),
]


REPORTS = [("users",), ("whois", "U0ANA"), ("usage",), ("audit", "5"), ("keys",), ("policy", "user"), ("budget",),
           ("channels",), ("groups",), ("requests",), ("reminders",)]


def help_verbs(text: str) -> list[str]:
    """The verb of each `claude-gate …` line of the help: its words before the first placeholder or option."""
    verbs = []
    for line in text.splitlines():
        if line.startswith("claude-gate "):
            words = line.removeprefix("claude-gate ").split(" — ")[0].split()
            verb = [w for w in itertools.takewhile(lambda w: not w.startswith(("<", "@", "[", "--")), words)]
            extra = [w for w in words[len(verb):] if w in ("--csv", "--since")]
            verbs.append(" ".join(verb + extra[:1]))
    return verbs


def test_every_verb_of_help_runs_from_a_fresh_database_and_speaks_shell(tmp_path: Path, fake_slack,
                                                                         fake_anthropic) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "ANTHROPIC_API_KEY": API_KEY,
           "ANTHROPIC_BASE_URL": fake_anthropic.base_url, "SLACK_BOT_TOKEN": "xoxb-cli",
           "SLACK_API_URL": fake_slack.api_url, "REMINDER_CHANNEL": "C0REMIND", "CI_KEY": API_KEY[:-4] + "Zq9X",
           "BOOTSTRAP_OWNERS": "U0OWNER",
           # a matplotlib that has never run here (a fresh install): it builds its font cache and says so at INFO
           "MPLCONFIGDIR": str(tmp_path / "matplotlib")}
    for user in ("U0OWNER", "U0ANA", "U0BEN"):
        fake_slack.add_user(user, email=f"{user.lower()}@example.com")
    fake_slack.add_usergroup("S0ENG", "eng", ["U0ANA", "U0BEN"])
    shown = run_cli("help", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    verbs = help_verbs(shown.stdout)
    # serve runs in tests/processes/test_startup.py
    assert sorted(set(verbs)) == sorted({verb for verb, _, _ in EVERY_VERB} | {"serve"})
    assert "days=" not in shown.stdout and "/claude-admin" not in shown.stdout
    for verb, words, status in EVERY_VERB:
        result = run_cli(*words, env=env, cwd=tmp_path)
        assert result.returncode == status, (words, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, words
        text = result.stdout + result.stderr
        assert text.strip(), words
        if verb != "manifest":  # the manifest is Slack's JSON: it names /claude-admin
            assert shell_text(text), (words, text)
        if verb == "usage chart":
            assert result.stderr.startswith("wrote cost.png") and (tmp_path / "cost.png").stat().st_size > 0
        if verb == "audit export":
            assert (tmp_path / "audit.jsonl").read_text().count("\n") > 5
        if verb == "models":  # Anthropic's list with the price table's numbers
            assert "claude-haiku-5-5 (alias haiku)" in result.stdout, result.stdout
            assert "$0.10 in / $0.50 out per million tokens" in result.stdout
            assert "past 100,000 prompt tokens $0.50 / $2.50" in result.stdout
    for words in REPORTS:  # every report verb also answers as JSON, for scripts
        result = run_cli(*words, "--json", env=env, cwd=tmp_path)
        assert result.returncode == 0, (words, result.stderr)
        report = json.loads(result.stdout)
        assert report["kind"] in ("Reply", "KeyListing", "ReminderSchedule") and len(report) > 1, (words, report)


def test_a_chart_of_no_spend_writes_no_file(tmp_path: Path, database_url: str) -> None:
    out = tmp_path / "cost.png"
    result = run_cli("usage", "chart", "--out", str(out), env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == "" and not out.exists()
    assert result.stderr.startswith("No spend in the last 30 days") and result.stderr.count("\n") == 1


def test_chat_into_a_closed_pipe_ends_quietly(tmp_path: Path, database_url: str, fake_anthropic) -> None:
    """`claude-gate chat … | head -c 12`: the reader goes mid-answer; the answer is still finished, no traceback."""
    env = {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url}
    run_cli("grant", "U0PIPE", "user", env=env, cwd=tmp_path)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))}
    result = subprocess.run(f"{sys.executable} -m bot chat --as U0PIPE 'a long question' | head -c 12",
                            shell=True, env=clean | env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout == "Echo: a long"
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
