"""Shared pieces of the benchmarks: fakes, a served app process, signed requests, statistics, table rows."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.fakes.signing import command_body, event_body, json_body, sign

ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench-token"
API_KEY = "sk-ant-api03-bench-key-AbCd"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Row:
    name: str
    value: str
    target: str
    met: bool | None  # None: no target

    def render(self) -> str:
        met = "—" if self.met is None else ("yes" if self.met else "NO")
        return f"| {self.name} | {self.value} | {self.target} | {met} |"


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n")
    print("| figure | measured | target | met |")
    print("|---|---|---|---|")
    for row in rows:
        print(row.render())
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def app_env(database_url: str, slack_api_url: str, anthropic_url: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))}
    return base | {
        "DATABASE_URL": database_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": anthropic_url,
        "LOG_LEVEL": "WARNING",
    } | extra


class ServedApp:
    """`claude-gate serve` as a real process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="claude-gate-bench-"))
        self.log = (self.workdir / "serve.log").open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
                                        cwd=self.workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.started = time.perf_counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Seconds from the process start to the first 200 from /healthz."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "serve.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
                    if b" 200 " in sock.recv(64):
                        return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("serve did not become healthy")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


SignedEvent = tuple[bytes, dict[str, str]]


def signed_event(event: dict) -> SignedEvent:
    """The body and headers Slack would send for ``event`` (Slack signs; the app only verifies)."""
    raw = json_body(event_body(event))
    return raw.encode(), sign(raw, SIGNING_SECRET)


async def post_signed(http: aiohttp.ClientSession, url: str, signed: SignedEvent, *,
                      path: str = "/slack/events") -> float:
    """POST a signed event; returns the seconds until Slack would have its 200 (the ack)."""
    body, headers = signed
    started = time.perf_counter()
    async with http.post(url + path, data=body, headers=headers) as response:
        await response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started


async def post_event(http: aiohttp.ClientSession, url: str, event: dict, *, path: str = "/slack/events") -> float:
    return await post_signed(http, url, signed_event(event), path=path)


async def post_command(http: aiohttp.ClientSession, url: str, command: str, text: str, user: str,
                       response_url: str) -> float:
    raw = command_body(command, text, user, response_url=response_url)
    started = time.perf_counter()
    async with http.post(url + "/slack/events", data=raw.encode(), headers=sign(raw, SIGNING_SECRET)) as response:
        await response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started
