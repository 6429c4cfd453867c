"""Shared pieces of the benchmarks: fakes, served app processes (and the app in-process), signed requests, bursts of
mentions, the features every gate benchmark runs with, CPU from /proc (PostgreSQL's too), statistics, table rows.

BENCH_FEATURES=0 runs the gate benchmarks without this round's features (below), for comparison; the default has
them on: a USD budget for the bench users' role (per person, far above what a run spends: it never refuses, but
every admission reserves against it), a channel setting for the bench channel (a prompt added to the system prompt
and a default model), and SECRET_POLICY=block. They are set through the real command line (`python -m bot policy
set …`, `python -m bot channel …`) before the app starts; with BENCH_FEATURES=0 they are removed the same way, so a
reused database (BENCH_DATABASE_URL) never keeps an earlier run's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy.engine import make_url

from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.fakes.signing import command_body, event_body, json_body, sign

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-bench-token"
API_KEY = "sk-ant-api03-bench-key-AbCd"
MODEL_SECONDS = 2.0  # the fake model's time per answer in the concurrency benchmarks
CHANNEL = "CBENCH"

FEATURES = os.environ.get("BENCH_FEATURES", "1") != "0"
DAILY_USD = "1000"  # per person: a run spends cents
CHANNEL_PROMPT = "This is the benchmark channel: answer in plain English, briefly."
FEATURES_NAME = ("with reservations (USD budget), channel setting, SECRET_POLICY=block" if FEATURES
                 else "features off (BENCH_FEATURES=0: no USD budget, no channel setting, SECRET_POLICY=off)")


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


@contextmanager
def fakes() -> Iterator[tuple[FakeSlack, FakeAnthropic]]:
    """The fake Slack and Anthropic. Message timestamps start now: the app claims each channel message once (by
    channel and ts) and a reused database (BENCH_DATABASE_URL) remembers the claims of earlier runs."""
    with FakeSlack() as slack, FakeAnthropic() as anthropic:
        slack.ts_base = time.time_ns() // 1000
        yield slack, anthropic


def cli(database_url: str, *words: str) -> None:
    """``python -m bot <words>`` against ``database_url``, as an operator would type it (no Slack: the shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))}
    env |= {"DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "bot", *words], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"python -m bot {' '.join(words)}: {done.stdout}{done.stderr}")


def features_env() -> dict[str, str]:
    return {"SECRET_POLICY": "block" if FEATURES else "off"}


def prepare_database(database_url: str, role: str) -> None:
    """Migrate, then switch this round's features on for ``role`` and CHANNEL (off with BENCH_FEATURES=0)."""
    cli(database_url, "db", "upgrade")
    cli(database_url, "policy", "set", role, "daily_usd", DAILY_USD if FEATURES else "none")
    cli(database_url, "channel", CHANNEL, "prompt", CHANNEL_PROMPT if FEATURES else "none")
    cli(database_url, "channel", CHANNEL, "model", "haiku" if FEATURES else "none")


def sqlite_file() -> str:
    return f"sqlite:///{tempfile.mkdtemp()}/bench.db"


def database_kind(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgres") else "SQLite"


def bench_settings(slack: FakeSlack, anthropic: FakeAnthropic, database_url: str, **overrides: Any) -> Settings:
    from bot.config import Settings

    return Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url,
                    anthropic_api_key=API_KEY, anthropic_base_url=anthropic.base_url, database_url=database_url,
                    **overrides)


@asynccontextmanager
async def app_in_process(settings: Settings) -> AsyncIterator[tuple[Runtime, str]]:
    """The real app in this process, served on a free 127.0.0.1 port: (the runtime, its base URL)."""
    from aiohttp import web

    from bot.app import build_app

    os.environ["ANTHROPIC_API_KEY"] = API_KEY  # the key of workspace `default` is read from the environment
    app = build_app(settings)
    await app.start()
    runner = web.AppRunner(app.web_app(), access_log=None)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await app.close()


class ServedApp:
    """`claude-gate serve` as a real process (``module``: another entry point taking the same arguments)."""

    def __init__(self, env: dict[str, str], module: str = "bot") -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="claude-gate-bench-"))
        self.log = (self.workdir / "serve.log").open("wb")
        if module != "bot":  # bench/ is not installed: found from the checkout
            env = env | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-m", module, "serve", "--port", str(self.port)],
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


def answers_done(slack: FakeSlack) -> int:
    return sum(1 for method, params in list(slack.calls)
               if (method == "chat.stopStream" or (method == "chat.postMessage" and params.get("thread_ts")))
               and params.get("channel") == CHANNEL)


async def wait_done(slack: FakeSlack, n: int, timeout: float) -> float:
    started = time.perf_counter()
    while answers_done(slack) < n:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"only {answers_done(slack)} of {n} answers after {timeout} s")
        await asyncio.sleep(0.02)
    return time.perf_counter()


def mention(slack: FakeSlack, i: int) -> dict:
    ts = slack.next_ts()
    user = f"UB{i:05d}"
    slack.add_message(CHANNEL, ts, f"<@UBOT> question {i}", user=user)
    return {"type": "app_mention", "user": user, "text": f"<@UBOT> question {i}", "ts": ts, "channel": CHANNEL}


async def burst(url: str | list[str], slack: FakeSlack, n: int, *, probe: bool = False,
                pid: int | list[int] | None = None, connections: int = 0) -> dict[str, float]:
    """Send n mentions at once (spread over several processes' URLs, if given several); optionally probe ack latency
    and sample RSS (of the first process) while they are in flight. CPU is summed over the processes."""
    urls = [url] if isinstance(url, str) else url
    pids = [] if pid is None else [pid] if isinstance(pid, int) else pid
    slack.reset_calls()
    events = [signed_event(mention(slack, i)) for i in range(n)]  # signed before the clock starts: Slack signs
    figures: dict[str, float] = {}
    rss_samples: list[int] = []
    sampling = True

    def sample() -> None:
        while sampling and pids:
            rss_samples.append(rss_kib(pids[0]))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = sum(cpu_seconds(p) for p in pids)
    driver_before = cpu_seconds(os.getpid())  # this process: the client sending events, and both fakes
    connector = aiohttp.TCPConnector(limit=connections)  # 0: no limit
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        acks = await asyncio.gather(*(post_signed(http, urls[i % len(urls)], e) for i, e in enumerate(events)))
        if probe:
            probes: list[float] = []
            for i in range(40):  # events and slash commands while the answers are in flight
                probes.append(await post_event(http, urls[0], {"type": "app_home_opened", "user": f"UB{i:05d}",
                                                               "tab": "home", "channel": "D1"}))
                probes.append(await post_command(http, urls[0], "/claude", "status", f"UB{i:05d}",
                                                 slack.new_response_url()))
            figures["probe_p50"], figures["probe_p99"] = median(probes), percentile(probes, 0.99)
        done = await wait_done(slack, n, timeout=max(60.0, n * 1.0))
    sampling = False
    sampler.join()
    figures["ratio"] = (done - started) / MODEL_SECONDS
    if pids:
        figures["cpu_ms"] = (sum(cpu_seconds(p) for p in pids) - cpu_before) / n * 1000
    figures["driver_cpu_ms"] = (cpu_seconds(os.getpid()) - driver_before) / n * 1000
    figures["seconds"] = done - started
    figures["ack_p50"], figures["ack_p99"] = median(acks), percentile(acks, 0.99)
    if rss_samples:
        figures["rss_peak_kib"] = max(rss_samples)
    return figures


async def acks_only(url: str, slack: FakeSlack, n: int) -> float:
    """Seconds until n simultaneous mentions are all acknowledged (for the null server, which answers nothing)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        events = [signed_event(mention(slack, i)) for i in range(n)]
        started = time.perf_counter()
        await asyncio.gather(*(post_signed(http, url, e) for e in events))
        return time.perf_counter() - started


def start_baseline(module: str, slack: FakeSlack, anthropic: FakeAnthropic) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m <module>`` serving Slack events on a free port, configured like Claude Gate."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))} | {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": anthropic.base_url, "PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{module} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """The median, and the range over the rounds when there were several."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


class PostgresCpu:
    """CPU seconds PostgreSQL's backends spent for one database while the ``with`` block ran (the server is local:
    its processes are read in /proc). Backends are found in pg_stat_activity and sampled every 0.1 s, so one that
    exits in the block (a pool's overflow connection) counts up to its last sample; this sampler's own backend and
    the server's shared processes (WAL writer, checkpointer: other databases' too) are not counted."""

    def __init__(self, database_url: str) -> None:
        import psycopg

        url = make_url(database_url).set(drivername="postgresql")
        self.connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        self.seconds = 0.0

    def sample(self) -> dict[int, float]:
        rows = self.connection.execute("select pid from pg_stat_activity where datname = current_database() "
                                       "and pid <> pg_backend_pid()").fetchall()
        found = {}
        for (pid,) in rows:
            try:
                found[pid] = cpu_seconds(pid)
            except OSError:  # exited since
                continue
        return found

    def __enter__(self) -> PostgresCpu:
        self.first = self.sample()
        if not self.first:
            raise RuntimeError("no PostgreSQL backend of this database is readable in /proc: is the server local?")
        self.last = dict(self.first)
        self.running = True
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()
        return self

    def poll(self) -> None:
        while self.running:
            self.last.update(self.sample())
            time.sleep(0.1)

    def __exit__(self, *_exc: object) -> None:
        self.running = False
        self.thread.join()
        self.last.update(self.sample())
        self.connection.close()
        self.seconds = sum(cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items())
