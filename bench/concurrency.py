"""Concurrency, ack latency under load, memory, start-up: `claude-gate serve` as a real process.

N simultaneous mentions from different users, the fake model taking 2 s per answer; time until every
answer is complete ÷ 2 s, median of BENCH_ROUNDS rounds. Beside it in the same run, round by round:

- the floor (bench/async_baseline.py): the same handler on Bolt's AsyncApp with the same SDK clients but no gate,
  no database and no streaming relay: what the libraries alone cost per conversation on this machine;
- the harness floor (bench/null_server.py): a server that only acknowledges; how long this client takes to have
  N events acknowledged at all, plus the model's 2 s, is the best ratio any app could get here;
- the baseline (bench/sync_baseline.py): the same handler on Bolt's synchronous `App` with its default thread
  pool, which is what most Slack bots run (one round: it takes minutes).

CPU per conversation is the served process's user + system time over a round ÷ N (from /proc).
"""

from __future__ import annotations

import asyncio
import os
import socket
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
    cpu_seconds,
    free_port,
    median,
    percentile,
    post_command,
    post_event,
    post_signed,
    print_table,
    rss_kib,
    signed_event,
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


async def main_async(sizes: list[int], baseline_sizes: list[int], rounds: int) -> list[Row]:
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
        kind = "PostgreSQL" if database.startswith("postgres") else "SQLite"
        rows.append(Row(f"start-up: serve → healthy /healthz (migrated {kind}), median of 5",
                        f"{median(startups):.2f} s", "—", None))

        app = ServedApp(env)
        app.wait_healthy()
        floor, floor_url = start_baseline("bench.async_baseline", slack, anthropic)
        null, null_url = start_baseline("bench.null_server", slack, anthropic)
        try:
            await asyncio.sleep(1)
            idle = rss_kib(app.process.pid)
            rows.append(Row("memory: idle RSS", f"{idle / 1024:.0f} MiB", "—", None))
            await burst(app.url, slack, 20)  # warm caches and connection pools
            await burst(floor_url, slack, 20)
            await acks_only(null_url, slack, 20)
            for n in sizes:
                ours: list[dict[str, float]] = []
                bare: list[dict[str, float]] = []
                harness: list[float] = []
                for _ in range(rounds):  # alternating, so drift and noise hit all alike
                    ours.append(await burst(app.url, slack, n, pid=app.process.pid))
                    bare.append(await burst(floor_url, slack, n, pid=floor.pid))
                    harness.append((MODEL_SECONDS + await acks_only(null_url, slack, n)) / MODEL_SECONDS)
                print(f"  N={n} done", flush=True)
                ratio = median([f["ratio"] for f in ours])
                rows.append(Row(f"concurrency N={n}: all answers ÷ 2 s (Claude Gate, AsyncApp, one process)",
                                spread([f["ratio"] for f in ours]), "≤ 1.25 at N=500" if n == 500 else "—",
                                ratio <= 1.25 if n == 500 else None))
                rows.append(Row(f"  floor N={n}: the same handler on AsyncApp, no gate, database or relay",
                                spread([f["ratio"] for f in bare]), "—", None))
                rows.append(Row(f"  harness floor N={n}: 2 s + the time this client takes to have the N events "
                                "acknowledged by a server that does nothing, ÷ 2 s", spread(harness), "—", None))
                rows.append(Row(f"  CPU per conversation at N={n}: Claude Gate / floor",
                                f"{spread([f['cpu_ms'] for f in ours], '{:.1f}')} / "
                                f"{spread([f['cpu_ms'] for f in bare], '{:.1f}')} ms", "—", None))
                rows.append(Row(f"  CPU of this client and both fakes per conversation at N={n}, beside Claude Gate",
                                f"{spread([f['driver_cpu_ms'] for f in ours], '{:.1f}')} ms", "—", None))
                if n == max(sizes):  # one more round, with events and commands sent while the answers are in flight
                    probed = await burst(app.url, slack, n, probe=True, pid=app.process.pid)
                    rows.append(Row(f"ack latency while {n} answers are in flight: p50 / p99",
                                    f"{probed['probe_p50'] * 1000:.1f} / {probed['probe_p99'] * 1000:.1f} ms",
                                    "p99 ≤ 100 ms", probed["probe_p99"] <= 0.100))
                    rows.append(Row(f"ack latency of the {n} mentions themselves: p50 / p99",
                                    f"{median([f['ack_p50'] for f in ours]) * 1000:.1f} / "
                                    f"{median([f['ack_p99'] for f in ours]) * 1000:.1f} ms", "—", None))
                    growth = (max(f["rss_peak_kib"] for f in [*ours, probed]) - idle) / n
                    rows.append(Row(f"memory: RSS growth per in-flight conversation at N={n}",
                                    f"{growth:.0f} KiB", "—", None))
            if kind == "PostgreSQL":  # the documented way to scale: several processes on one PostgreSQL
                second = ServedApp(env)
                second.wait_healthy()
                try:
                    both, pids = [app.url, second.url], [app.process.pid, second.process.pid]
                    await burst(both, slack, 20)
                    n = max(sizes)
                    shared = [await burst(both, slack, n, pid=pids) for _ in range(rounds)]
                    rows.append(Row(f"two processes on PostgreSQL, N={n} spread over both: all answers ÷ 2 s",
                                    spread([f["ratio"] for f in shared]), "—", None))
                    rows.append(Row(f"  CPU per conversation, both processes together, N={n}",
                                    f"{spread([f['cpu_ms'] for f in shared], '{:.1f}')} ms", "—", None))
                finally:
                    second.stop()
        finally:
            app.stop()
            stop(floor)
            stop(null)

        process, url = start_baseline("bench.sync_baseline", slack, anthropic)
        try:
            for n in baseline_sizes:
                # Bolt's built-in server is http.server with a listen backlog of 5: hundreds of simultaneous
                # connections are reset, so the baseline gets its events over 16 connections.
                figures = await burst(url, slack, n, connections=16)
                rows.append(Row(f"baseline N={n}: all answers ÷ 2 s (Bolt sync App, default thread pool)",
                                f"{figures['ratio']:.2f}", "—", None))
                print(rows[-1].render(), flush=True)
        finally:
            stop(process)
    return rows


def main() -> None:
    sizes = [int(n) for n in os.environ.get("BENCH_SIZES", "50,200,500").split(",")]
    baseline = [int(n) for n in os.environ.get("BENCH_BASELINE_SIZES", "50,200,500").split(",") if n]
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    rows = asyncio.run(main_async(sizes, baseline, rounds))
    database = "PostgreSQL" if os.environ.get("BENCH_DATABASE_URL", "").startswith("postgres") else "SQLite"
    print_table(f"Concurrency, acks, memory, start-up (claude-gate serve, {database}, fake model 2 s/answer)", rows)


if __name__ == "__main__":
    main()
