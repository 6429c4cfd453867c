"""Concurrency, ack latency under load, memory, start-up: `claude-gate serve` as a real process.

N simultaneous mentions from different users, the fake model taking 2 s per answer; time until every
answer is complete ÷ 2 s, median of BENCH_ROUNDS rounds. Beside it in the same run, round by round:

- the floor (bench/async_baseline.py): the same handler on Bolt's AsyncApp with the same SDK clients but no gate,
  no database and no streaming relay: what the libraries alone cost per conversation on this machine;
- the harness floor (bench/null_server.py): a server that only acknowledges; how long this client takes to have
  N events acknowledged at all, plus the model's 2 s, is the best ratio any app could get here;
- the baseline (bench/sync_baseline.py): the same handler on Bolt's synchronous `App` with its default thread
  pool, which is what most Slack bots run (one round: it takes minutes).

CPU per conversation is the served process's user + system time over a round ÷ N (from /proc). Also: start-up to
a healthy /healthz; the first answer asked at that moment (it may wait for the Anthropic SDK's import, which `serve`
starts once it listens) beside the second and beside `import anthropic` timed alone; RSS after the first answer
beside the floor's after its first. The app runs with this round's features on (bench/harness.py; BENCH_FEATURES=0
turns them off for comparison).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from contextlib import ExitStack

from bench.harness import (
    FEATURES_NAME,
    MODEL_SECONDS,
    ROOT,
    Row,
    ServedApp,
    acks_only,
    app_env,
    burst,
    database_kind,
    fakes,
    features_env,
    median,
    prepare_database,
    print_table,
    rss_kib,
    spread,
    sqlite_file,
    start_baseline,
    stop,
)

STARTUP_TARGET_S = 2.0


def sdk_import_seconds() -> float:
    """What `import anthropic` takes in a fresh interpreter here, median of 3: the first answer may wait for it."""
    code = "import time; t = time.perf_counter(); import anthropic; print(time.perf_counter() - t)"
    return median([float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                        cwd=ROOT).stdout) for _ in range(3)])


async def main_async(sizes: list[int], baseline_sizes: list[int], rounds: int) -> list[Row]:
    rows: list[Row] = []
    with fakes() as (slack, anthropic):
        anthropic.first_token_delay = MODEL_SECONDS
        anthropic.reply = "a short answer"
        for i in range(max(sizes)):
            slack.add_user(f"UB{i:05d}")
        database = os.environ.get("BENCH_DATABASE_URL") or sqlite_file()
        kind = database_kind(database)
        prepare_database(database, "power")
        env = app_env(database, slack.api_url, anthropic.base_url, DEFAULT_ROLE="power", **features_env())

        startups = []
        for _ in range(5):
            app = ServedApp(env)
            startups.append(app.wait_healthy())
            app.stop()
        startup = median(startups)
        rows.append(Row(f"start-up: serve → healthy /healthz (migrated {kind}), median of 5", f"{startup:.2f} s",
                        f"≤ {STARTUP_TARGET_S} s on SQLite", startup <= STARTUP_TARGET_S if kind == "SQLite" else None))

        with ExitStack() as running:
            app = ServedApp(env)
            running.callback(app.stop)
            app.wait_healthy()
            # the first answer, asked as soon as /healthz answers, waits for the SDK's import (serve loads it in a
            # thread once it listens); the second finds everything loaded
            at_healthy = rss_kib(app.process.pid)
            first = (await burst(app.url, slack, 1))["seconds"]
            after_first = rss_kib(app.process.pid)
            second = (await burst(app.url, slack, 1))["seconds"]
            floor, floor_url = start_baseline("bench.async_baseline", slack, anthropic)
            running.callback(stop, floor)
            null, null_url = start_baseline("bench.null_server", slack, anthropic)
            running.callback(stop, null)
            await burst(floor_url, slack, 1)
            floor_rss = rss_kib(floor.pid)
            sdk_import = sdk_import_seconds()
            rows.append(Row("memory: RSS at a healthy /healthz (before the first answer)",
                            f"{at_healthy / 1024:.0f} MiB", "—", None))
            rows.append(Row("memory: RSS after the first answer (every SDK loaded): Claude Gate / floor",
                            f"{after_first / 1024:.0f} / {floor_rss / 1024:.0f} MiB ({after_first / floor_rss:.2f}×)",
                            "≤ 1.25× the floor's", after_first <= 1.25 * floor_rss))
            rows.append(Row("first answer asked at a healthy /healthz, beside the second (model 2 s); `import "
                            "anthropic` alone", f"{first:.2f} s, {second:.2f} s; import {sdk_import:.2f} s",
                            "first − second ≤ the import", first - second <= sdk_import))
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
                floor_ratio = median([f["ratio"] for f in bare])
                rows.append(Row(f"  makespan at N={n}: Claude Gate's ratio ÷ the floor's",
                                f"{ratio / floor_ratio:.2f}", "≤ 1.3 at N=500" if n == 500 else "—",
                                ratio <= 1.3 * floor_ratio if n == 500 else None))
                cpu, floor_cpu = median([f["cpu_ms"] for f in ours]), median([f["cpu_ms"] for f in bare])
                rows.append(Row(f"  CPU per conversation at N={n}: Claude Gate / floor",
                                f"{spread([f['cpu_ms'] for f in ours], '{:.1f}')} / "
                                f"{spread([f['cpu_ms'] for f in bare], '{:.1f}')} ms ({cpu / floor_cpu:.2f}×)",
                                "≤ 1.5× at N=500" if n == 500 else "—", cpu <= 1.5 * floor_cpu if n == 500 else None))
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
                    growth = (max(f["rss_peak_kib"] for f in [*ours, probed]) - after_first) / n
                    rows.append(Row(f"memory: RSS growth per in-flight conversation at N={n}",
                                    f"{growth:.0f} KiB", "—", None))
            if kind == "PostgreSQL":  # the documented way to scale: several processes on one PostgreSQL
                other = ServedApp(env)
                running.callback(other.stop)
                other.wait_healthy()
                both, pids = [app.url, other.url], [app.process.pid, other.process.pid]
                await burst(both, slack, 20)
                n = max(sizes)
                shared = [await burst(both, slack, n, pid=pids) for _ in range(rounds)]
                rows.append(Row(f"two processes on PostgreSQL, N={n} spread over both: all answers ÷ 2 s",
                                spread([f["ratio"] for f in shared]), "—", None))
                rows.append(Row(f"  CPU per conversation, both processes together, N={n}",
                                f"{spread([f['cpu_ms'] for f in shared], '{:.1f}')} ms", "—", None))

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
    database = database_kind(os.environ.get("BENCH_DATABASE_URL", ""))
    print_table(f"Concurrency, acks, memory, start-up (claude-gate serve, {database}, fake model 2 s/answer; "
                f"{FEATURES_NAME})", rows)


if __name__ == "__main__":
    main()
