"""What a newcomer sees when `serve` cannot start: a short block, one line per missing or invalid setting with where
to get it, the manifest command as typed from the project directory; a port in use or an unreachable database is
one line. No traceback anywhere."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.test_cli import ROOT, run_cli

CREDENTIALS = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "ANTHROPIC_API_KEY": API_KEY}
WHERE = {
    "SLACK_BOT_TOKEN": "OAuth & Permissions",
    "SLACK_SIGNING_SECRET": "Basic Information",
    "ANTHROPIC_API_KEY": "console.anthropic.com",
}
SETTINGS_ENV = ("SLACK_", "ANTHROPIC_", "DATABASE_URL", "BOOTSTRAP", "DEFAULT_ROLE", "PORT", "LOG_")


@pytest.fixture
def serve_in(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """`claude-gate serve` in-process, from an empty directory, with only the given variables set."""

    for name in list(os.environ):
        if name.startswith(SETTINGS_ENV):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)

    def serve(env: dict[str, str]) -> int:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return main(["serve"])

    return serve


def problem_lines(err: str) -> dict[str, str]:
    """The block's lines that name a setting: {name: line}."""
    lines = {}
    for line in err.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0].isupper():
            lines[words[0]] = line
    return lines


@pytest.mark.parametrize("missing", list(CREDENTIALS))
@pytest.mark.parametrize("how", ["unset", "blank", "the example's placeholder"])
def test_each_missing_setting_is_one_line_with_where_to_get_it(serve_in, capsys, missing: str, how: str) -> None:
    env = dict(CREDENTIALS)
    if how == "unset":
        del env[missing]
    else:
        env[missing] = "" if how == "blank" else {"SLACK_BOT_TOKEN": "xoxb-...", "SLACK_SIGNING_SECRET": "...",
                                                  "ANTHROPIC_API_KEY": "sk-ant-..."}[missing]
    assert serve_in(env) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first == f"claude-gate: Missing setting {missing}: {first.split(': ', 2)[2]}"
    assert WHERE[missing] in first
    assert "manifest --url https://<your-host>" in err  # how to create the Slack app that gives these values
    assert len(err.splitlines()) <= 6


def test_all_missing_is_a_short_aligned_block(serve_in, capsys) -> None:
    assert serve_in({}) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "claude-gate: 3 missing settings (set them in .env or the environment):"
    named = problem_lines(err)
    assert list(named) == list(CREDENTIALS)
    for name, line in named.items():
        assert WHERE[name] in line and "missing: " in line
    assert len({line.index("missing:") for line in named.values()}) == 1  # aligned
    assert len(lines) <= 8 and all(len(line) <= 120 for line in named.values())


def test_socket_mode_needs_no_signing_secret(serve_in, capsys) -> None:
    assert serve_in({"SLACK_APP_TOKEN": "xapp-1-A0-1-abc", "SLACK_BOT_TOKEN": BOT_TOKEN}) == 2
    err = capsys.readouterr().err
    assert err.startswith("claude-gate: Missing setting ANTHROPIC_API_KEY: ") and "SLACK_SIGNING_SECRET" not in err


def test_invalid_and_missing_settings_are_listed_together(serve_in, capsys) -> None:
    assert serve_in({"DEFAULT_ROLE": "emperor", "PORT": "http", "ANTHROPIC_API_KEY": API_KEY}) == 2
    err = capsys.readouterr().err
    assert err.startswith("claude-gate: 2 missing and 2 invalid settings")
    named = problem_lines(err)
    assert set(named) == {"DEFAULT_ROLE", "PORT", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"}
    assert "invalid: 'emperor' is not accepted (expected one of viewer, user, power" in named["DEFAULT_ROLE"]


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("SLACK_BOT_TOKEN", "xapp-1-A0-pasted-in-the-wrong-place", "xoxb-"),
    ("SLACK_APP_TOKEN", "xoxb-pasted-in-the-wrong-place", "xapp-"),
    ("ANTHROPIC_API_KEY", "xoxb-pasted-in-the-wrong-place", "sk-ant-"),
])
def test_a_secret_of_the_wrong_kind_is_named_without_its_value(serve_in, capsys, variable: str, value: str,
                                                               expected: str) -> None:
    env = CREDENTIALS | {variable: value}
    assert serve_in(env) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"claude-gate: Invalid setting {variable}: it does not start with {expected}")
    assert err.count("\n") == 1 and value not in err


@pytest.mark.parametrize(("url", "message"), [
    ("not a url", "Invalid setting DATABASE_URL: it is not a database URL (expected a SQLAlchemy URL"),
    ("mysql://someone@127.0.0.1/gate", "Invalid setting DATABASE_URL: mysql is not supported (SQLite or PostgreSQL)"),
])
def test_a_database_url_that_cannot_work_is_one_line(serve_in, capsys, url: str, message: str) -> None:
    assert serve_in(CREDENTIALS | {"DATABASE_URL": url}) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"claude-gate: {message}") and err.count("\n") == 1


def test_the_real_command_shows_the_block_and_the_make_form(tmp_path: Path, database_url: str) -> None:
    """Run as `make run` runs it: the installed script, from a directory with the Makefile."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    script = Path(sys.executable).parent / "claude-gate"
    command = [str(script), "serve"] if script.exists() else [sys.executable, "-m", "bot", "serve"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_ENV)} | {"DATABASE_URL": database_url}
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert list(problem_lines(result.stderr)) == list(CREDENTIALS)
    assert "`make manifest URL=https://<your-host>`" in result.stderr
    assert "make manifest SOCKET=1" in result.stderr
    assert "manifest --url https://<your-host>`" in result.stderr
    assert result.stdout == ""


def test_a_port_in_use_is_one_line(tmp_path: Path, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", env=CREDENTIALS | {"DATABASE_URL": database_url, "PORT": str(port)}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"claude-gate: port {port} is already in use (another claude-gate serve?): stop that "
                             "process, or choose another port with PORT or --port\n")


def test_an_unreachable_database_is_one_line_for_serve(tmp_path: Path) -> None:
    result = run_cli("serve", env=CREDENTIALS | {"DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/gate.db"},
                     cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("claude-gate: the database is not reachable (unable to open database file). "
                             "Check DATABASE_URL.\n")
