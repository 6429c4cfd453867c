"""The `claude-gate` command line, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL", "BOOTSTRAP", "DEFAULT_ROLE"))}
    return subprocess.run([sys.executable, "-m", "bot", *args], env=clean | (env or {}), cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


# `serve` without credentials, with a port in use, or an unreachable database: tests/test_startup.py


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
    assert run_cli("grant", "<@U0OWNER|olga>", "owner", env=env, cwd=tmp_path).stdout == "U0OWNER is now owner\n"
    assert run_cli("grant", "U0USER", "power", env=env, cwd=tmp_path).returncode == 0
    listing = run_cli("users", env=env, cwd=tmp_path).stdout
    rows = {line.split()[0]: line for line in listing.splitlines()}
    assert rows["U0OWNER"].split()[1] == "owner" and rows["U0USER"].split()[1] == "power"
    assert rows["U0OWNER"].index("granted by") == rows["U0USER"].index("granted by")  # aligned columns
    assert run_cli("users", "power", env=env, cwd=tmp_path).stdout.count("\n") == 1
    refused = run_cli("revoke", "U0OWNER", env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "last owner" in refused.stderr
    assert run_cli("revoke", "U0USER", env=env, cwd=tmp_path).stdout == "U0USER is no longer power\n"
    bad = run_cli("grant", "not-a-user", "power", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "is not a Slack user ID" in bad.stderr
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
    assert "1 requests" in run_cli("usage", "U0CSV", env=env, cwd=tmp_path).stdout
    audit = run_cli("audit", "5", env=env, cwd=tmp_path).stdout
    assert "cli policy.set user" in audit and "cli grant U0CSV" in audit


def test_role_commands_do_not_import_the_anthropic_sdk() -> None:
    """`import anthropic` takes seconds; `grant`, `users`, `db upgrade` and reports never call Anthropic. The model
    defaults come from the SDK's data module alone, and are the ones the whole SDK declares."""
    probe = ("import sys, typing\n"
             "import bot.cli, bot.cli_keys, bot.cli_reports, bot.services.access.roles, bot.store.migrate\n"
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
    assert run_cli("users", cwd=project).stdout == "no explicit grants\n"
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
