"""What a newcomer sees when `serve` cannot start: a short block, one line per missing or invalid setting with where
to get it, the manifest command as typed from the project directory; a port in use or an unreachable database is
one line. No traceback anywhere."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import main
from tests.app.test_cli import ROOT, run_cli
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.support.processes import free_port

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


def test_a_port_in_use_is_one_line(tmp_path: Path, database_url: str, fake_slack) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", env=CREDENTIALS | {"DATABASE_URL": database_url, "PORT": str(port),
                                                     "SLACK_API_URL": fake_slack.api_url}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"claude-gate: port {port} is already in use (another claude-gate serve?): stop that "
                             "process, or choose another port with PORT or --port\n")


def test_an_unreachable_database_is_one_line_for_serve(tmp_path: Path) -> None:
    result = run_cli("serve", env=CREDENTIALS | {"DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/gate.db"},
                     cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("claude-gate: the database is not reachable (unable to open database file). "
                             "Check DATABASE_URL.\n")


# -- the credentials checked with their services at start-up, and Slack out of reach ------------------------------

APP_TOKEN = "xapp-1-A0001-1-startup-test-token"
ADMIN_KEY = "sk-ant-admin01-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe"  # assembled: no whole key in the source


def serving_env(database_url: str, fake_slack, fake_anthropic, **more: str) -> dict[str, str]:
    return CREDENTIALS | {"DATABASE_URL": database_url, "SLACK_API_URL": fake_slack.api_url,
                          "ANTHROPIC_BASE_URL": fake_anthropic.base_url, "PORT": str(free_port())} | more


def start_serve(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_ENV)}
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=workdir, env=clean | env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return process, log_path


def health(port: int | str) -> tuple[int, dict] | None:
    import json as _json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, _json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json.loads(exc.read())
    except OSError:
        return None


def wait_for(predicate, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process.poll() is not None:
            raise AssertionError(f"serve ended ({process.returncode}):\n{log_path.read_text()}")
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s:\n{log_path.read_text()}")


def stop_serve(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("serve did not stop on SIGTERM") from None


@pytest.mark.parametrize(("variable", "more"), [
    ("SLACK_BOT_TOKEN", {}),
    ("SLACK_APP_TOKEN", {"SLACK_APP_TOKEN": APP_TOKEN}),
])
def test_a_token_slack_refuses_is_one_line_and_exit_1(tmp_path: Path, database_url: str, fake_slack, fake_anthropic,
                                                      variable: str, more: dict[str, str]) -> None:
    env = serving_env(database_url, fake_slack, fake_anthropic, **more)
    fake_slack.invalid_tokens.add(env[variable])
    result = run_cli("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"claude-gate: Slack refused {variable} (invalid_auth): "), result.stderr
    assert result.stderr.count("\n") == 1 and env[variable] not in result.stderr


@pytest.mark.parametrize("command", [["serve"], ["chat", "--as", "U0CLI", "hello"]])
def test_an_admin_key_as_the_api_key_is_one_line_and_exit_1(tmp_path: Path, database_url: str, fake_slack,
                                                            fake_anthropic, command: list[str]) -> None:
    env = serving_env(database_url, fake_slack, fake_anthropic, ANTHROPIC_API_KEY=ADMIN_KEY)
    result = run_cli(*command, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("claude-gate: ANTHROPIC_API_KEY holds an Admin API key (sk-ant-admin…), which cannot ask "
                             "Claude: put a workspace API key (sk-ant-api…) there, and the Admin key in "
                             "ANTHROPIC_ADMIN_KEY.\n")
    assert fake_anthropic.requests == []


def test_sigterm_stops_a_socket_mode_connect_that_never_succeeds(tmp_path: Path, database_url: str, fake_slack,
                                                                 fake_anthropic) -> None:
    """apps.connections.open answers with a websocket URL where nothing listens: slack_sdk retries the connect every
    10 s for ever. /healthz answers meanwhile (slack: connecting), nothing claims to be serving, and SIGTERM ends it."""
    fake_slack.socket_url = f"ws://127.0.0.1:{free_port()}/link"
    env = serving_env(database_url, fake_slack, fake_anthropic, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    process, log_path = start_serve(env, tmp_path)
    try:
        assert wait_for(lambda: health(env["PORT"]), process, log_path) == (
            200, {"ok": True, "database": "ok", "slack": "connecting"})
        wait_for(lambda: "Failed to connect" in log_path.read_text(), process, log_path, timeout=30)
    finally:
        code = stop_serve(process)
    log = log_path.read_text()
    assert code == 0, log
    assert "is serving" not in log and "Traceback" not in log
    assert "connecting to Slack (Socket Mode)" in log and "shutting down" in log


def test_sigterm_during_start_up_ends_serve(tmp_path: Path, database_url: str, fake_slack, fake_anthropic) -> None:
    """Slack answers auth.test slowly (a long outage looks like this): SIGTERM before start-up is over ends it."""
    fake_slack.delay("auth.test", 30)
    env = serving_env(database_url, fake_slack, fake_anthropic)
    process, log_path = start_serve(env, tmp_path)
    try:
        wait_for(lambda: fake_slack.calls_to("auth.test"), process, log_path)
    finally:
        code = stop_serve(process, timeout=10)
    assert code == 0, log_path.read_text()
    assert "stopped during start-up" in log_path.read_text()


def test_slack_unreachable_at_start_is_a_warning_then_ok(tmp_path: Path, database_url: str, fake_slack,
                                                        fake_anthropic) -> None:
    """HTTP mode: Slack answers 503 at first; serve starts anyway, says so at /healthz, and checks again."""
    fake_slack.fail_next("auth.test", "service_unavailable", status=503)
    env = serving_env(database_url, fake_slack, fake_anthropic)
    process, log_path = start_serve(env, tmp_path)
    try:
        assert wait_for(lambda: health(env["PORT"]), process, log_path) == (
            200, {"ok": True, "database": "ok", "slack": "unreachable"})
        assert "Slack is unreachable" in log_path.read_text()
        assert wait_for(lambda: (health(env["PORT"]) or (0, {}))[1].get("slack") == "ok", process, log_path, 30)
    finally:
        code = stop_serve(process)
    log = log_path.read_text()
    assert code == 0 and "Traceback" not in log, log
    assert sum(" WARNING " in line for line in log.splitlines()) == 1, log


def test_socket_mode_health_is_ok_once_connected(tmp_path: Path, database_url: str, fake_slack,
                                                 fake_anthropic) -> None:
    env = serving_env(database_url, fake_slack, fake_anthropic, SLACK_APP_TOKEN=APP_TOKEN)
    del env["SLACK_SIGNING_SECRET"]
    process, log_path = start_serve(env, tmp_path)
    try:
        wait_for(lambda: (health(env["PORT"]) or (0, {}))[1].get("slack") == "ok", process, log_path)
        assert "is serving on port" in log_path.read_text()
    finally:
        assert stop_serve(process) == 0


def test_a_token_refused_once_slack_is_back_stops_serve_with_exit_1(tmp_path: Path, database_url: str, fake_slack,
                                                                    fake_anthropic) -> None:
    fake_slack.fail_next("auth.test", "service_unavailable", status=503)
    env = serving_env(database_url, fake_slack, fake_anthropic)
    process, log_path = start_serve(env, tmp_path)
    try:
        assert wait_for(lambda: health(env["PORT"]), process, log_path)[1]["slack"] == "unreachable"
        fake_slack.invalid_tokens.add(BOT_TOKEN)  # the app was uninstalled meanwhile
        assert process.wait(timeout=30) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    last = log_path.read_text().splitlines()[-1]
    assert last.startswith("claude-gate: Slack refused SLACK_BOT_TOKEN (invalid_auth): "), log_path.read_text()
