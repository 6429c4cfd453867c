"""Concurrency, ack latency under load, memory, start-up: `claude-gate serve` as a real process.

N simultaneous mentions from different users, the fake model taking 2 s per answer; time until every
answer is complete ÷ 2 s. Baseline in the same run: the same handler on Bolt's synchronous `App` with its
default thread pool (bench/sync_baseline.py), which is what most Slack bots run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time

import aiohttp

from bench.harness import (
    API_KEY,
    BOT_TOKEN,
    ROOT,
    SIGNING_SECRET,
    Row,
    ServedApp,
    app_env,
    free_port,
    median,
    percentile,
    post_command,
    post_event,
    print_table,
    rss_kib,
)
from tests.fakes import FakeAnthropic, FakeSlack

MODEL_SECONDS = 2.0
CHANNEL = "CBENCH"


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


async def burst(url: str, slack: FakeSlack, n: int, *, probe: bool = False, pid: int | None = None,
                connections: int = 0) -> dict[str, float]:
    """Send n mentions at once; optionally probe ack latency and sample RSS while they are in flight."""
    slack.reset_calls()
    figures: dict[str, float] = {}
    rss_samples: list[int] = []
    sampling = True

    def sample() -> None:
        while sampling and pid:
            rss_samples.append(rss_kib(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    connector = aiohttp.TCPConnector(limit=connections)  # 0: no limit
    async with aiohttp.ClientSession(connector=connector) as http:
        events = [mention(slack, i) for i in range(n)]
        started = time.perf_counter()
        acks = await asyncio.gather(*(post_event(http, url, e) for e in events))
        if probe:
            probes: list[float] = []
            for i in range(40):  # events and slash commands while the answers are in flight
                probes.append(await post_event(http, url, {"type": "app_home_opened", "user": f"UB{i:05d}",
                                                           "tab": "home", "channel": "D1"}))
                probes.append(await post_command(http, url, "/claude", "status", f"UB{i:05d}",
                                                 slack.new_response_url()))
            figures["probe_p50"], figures["probe_p99"] = median(probes), percentile(probes, 0.99)
        done = await wait_done(slack, n, timeout=max(60.0, n * 1.0))
    sampling = False
    sampler.join()
    figures["ratio"] = (done - started) / MODEL_SECONDS
    figures["ack_p50"], figures["ack_p99"] = median(acks), percentile(acks, 0.99)
    if rss_samples:
        figures["rss_peak_kib"] = max(rss_samples)
    return figures


def start_baseline(slack: FakeSlack, anthropic: FakeAnthropic) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))} | {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": anthropic.base_url, "PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "bench.sync_baseline"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("baseline did not start")


async def main_async(sizes: list[int], baseline_sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    with FakeSlack() as slack, FakeAnthropic() as anthropic:
        anthropic.first_token_delay = MODEL_SECONDS
        anthropic.reply = "a short answer"
        for i in range(max(sizes)):
            slack.add_user(f"UB{i:05d}")
        database = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        env = app_env(database, slack.api_url, anthropic.base_url, DEFAULT_ROLE="power")
        subprocess.run([sys.executable, "-m", "bot", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                       capture_output=True)

        startups = []
        for _ in range(5):
            app = ServedApp(env)
            startups.append(app.wait_healthy())
            app.stop()
        rows.append(Row("start-up: serve → healthy /healthz (migrated SQLite), median of 5",
                        f"{median(startups):.2f} s", "—", None))

        app = ServedApp(env)
        app.wait_healthy()
        try:
            await asyncio.sleep(1)
            idle = rss_kib(app.process.pid)
            rows.append(Row("memory: idle RSS", f"{idle / 1024:.0f} MiB", "—", None))
            warm = await burst(app.url, slack, 20)  # warm caches and connection pools
            del warm
            for n in sizes:
                figures = await burst(app.url, slack, n, probe=n == max(sizes), pid=app.process.pid)
                print(f"  N={n} done", flush=True)
                rows.append(Row(f"concurrency N={n}: all answers ÷ 2 s (Claude Gate, AsyncApp)",
                                f"{figures['ratio']:.2f}", "≤ 1.25 at N=500" if n == 500 else "—",
                                figures["ratio"] <= 1.25 if n == 500 else None))
                if n == max(sizes):
                    rows.append(Row(f"ack latency while {n} answers are in flight: p50 / p99",
                                    f"{figures['probe_p50'] * 1000:.1f} / {figures['probe_p99'] * 1000:.1f} ms",
                                    "p99 ≤ 100 ms", figures["probe_p99"] <= 0.100))
                    rows.append(Row(f"ack latency of the {n} mentions themselves: p50 / p99",
                                    f"{figures['ack_p50'] * 1000:.1f} / {figures['ack_p99'] * 1000:.1f} ms",
                                    "—", None))
                    growth = (figures["rss_peak_kib"] - idle) / n
                    rows.append(Row(f"memory: RSS growth per in-flight conversation at N={n}",
                                    f"{growth:.0f} KiB", "—", None))
        finally:
            app.stop()

        process, url = start_baseline(slack, anthropic)
        try:
            for n in baseline_sizes:
                # Bolt's built-in server is http.server with a listen backlog of 5: hundreds of simultaneous
                # connections are reset, so the baseline gets its events over 16 connections.
                figures = await burst(url, slack, n, connections=16)
                rows.append(Row(f"baseline N={n}: all answers ÷ 2 s (Bolt sync App, default thread pool)",
                                f"{figures['ratio']:.2f}", "—", None))
                print(rows[-1].render(), flush=True)
        finally:
            process.terminate()
            process.wait(timeout=10)
    return rows


def main() -> None:
    sizes = [int(n) for n in os.environ.get("BENCH_SIZES", "50,200,500").split(",")]
    baseline = [int(n) for n in os.environ.get("BENCH_BASELINE_SIZES", "50,200").split(",") if n]
    rows = asyncio.run(main_async(sizes, baseline))
    database = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL", "").startswith("postgres") else "SQLite"
    print_table(f"Concurrency, acks, memory, start-up (claude-gate serve, {database}, fake model 2 s/answer)", rows)


if __name__ == "__main__":
    main()
