"""Real `claude-gate serve` processes for the multi-process tests (several processes, one PostgreSQL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.fakes.signing import json_body, sign
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServeProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sdk_loaded(self) -> bool:
        """The Anthropic SDK is imported (in a thread, after listening: seconds on a loaded machine); an answer
        asked before waits for it within its ANSWER_TIMEOUT_SECONDS."""
        return "Anthropic SDK loaded" in self.log()


@dataclass
class Cluster:
    """N serve processes sharing one database, wired to the in-test fakes."""

    database_url: str
    slack: FakeSlack
    anthropic: FakeAnthropic
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[ServeProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "TEST_DATABASE"))}
        return base | {
            "DATABASE_URL": self.database_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url, "ANTHROPIC_API_KEY": API_KEY,
            "ANTHROPIC_BASE_URL": self.anthropic.base_url, "LOG_LEVEL": "INFO",
        } | self.extra_env

    def start(self, count: int, timeout: float = 60.0) -> list[ServeProcess]:
        started = []
        for _ in range(count):
            port = free_port()
            log_path = self.workdir / f"serve-{port}.log"
            with log_path.open("wb") as log:
                command = [sys.executable, "-m", "bot", "serve", "--port", str(port)]
                process = subprocess.Popen(command, cwd=self.workdir, env=self.env(), stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            started.append(ServeProcess(port, process, log_path))
        self.processes += started
        deadline = time.monotonic() + timeout
        for proc in started:
            while not self._healthy(proc):
                if proc.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"serve on {proc.port} did not become healthy:\n{proc.log()}")
                time.sleep(0.1)
        return started

    @staticmethod
    def _healthy(proc: ServeProcess) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=0.2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
                return b" 200 " in sock.recv(64)
        except OSError:
            return False

    def stop(self) -> None:
        for proc in self.processes:
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.process.kill()


async def post_signed(http: aiohttp.ClientSession, url: str, body: dict | str,
                      headers: dict[str, str] | None = None) -> int:
    raw = body if isinstance(body, str) else json_body(body)
    async with http.post(f"{url}/slack/events", data=raw.encode(), headers=sign(raw, SIGNING_SECRET) | (headers or {})
                         ) as response:
        await response.read()
        return response.status
