"""Scale-out on PostgreSQL: 1, 2 and 4 `claude-gate serve` processes sharing N conversations (runs only with
BENCH_DATABASE_URL; the server must run on this machine: its CPU is read in /proc).

N = BENCH_SCALE_N simultaneous mentions (default 1,000) from N people, spread evenly over the processes, the fake
model taking 2 s per answer, with this round's features on (bench/harness.py: each person has a USD budget, so
every admission reserves against it under the person's lock). Per process count, median of BENCH_ROUNDS rounds:
all answers ÷ 2 s, the app's CPU per conversation summed over its processes, and PostgreSQL's own (its backends
for this database, bench/harness.py: PostgresCpu). More processes should cost no more CPU per conversation (no
lock or pool contention): growth from 1 to 4 processes ≤ 15 %. Then the same with an `org` budget (`budget set
org daily …`): one pooled ledger, locked by every admission.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import ExitStack

from bench.harness import (
    FEATURES,
    FEATURES_NAME,
    MODEL_SECONDS,
    PostgresCpu,
    Row,
    ServedApp,
    app_env,
    burst,
    cli,
    fakes,
    features_env,
    median,
    prepare_database,
    print_table,
    spread,
)
from tests.support.fakes import FakeAnthropic, FakeSlack

PROCESSES = (1, 2, 4)
GROWTH_TARGET = 0.15


async def round_of(database: str, slack: FakeSlack, anthropic: FakeAnthropic, processes: int, n: int,
                   rounds: int) -> list[dict[str, float]]:
    env = app_env(database, slack.api_url, anthropic.base_url, DEFAULT_ROLE="power", **features_env())
    with ExitStack() as running:
        apps = []
        for _ in range(processes):
            app = ServedApp(env)
            running.callback(app.stop)
            apps.append(app)
        for app in apps:
            app.wait_healthy()
        urls, pids = [app.url for app in apps], [app.process.pid for app in apps]
        # warm, with every person of the rounds (each goes to the same process every round): the SDK, connection
        # pools and the people's profiles in every process
        await burst(urls, slack, max(n, 20 * processes))
        figures = []
        for _ in range(rounds):
            with PostgresCpu(database) as postgres:
                result = await burst(urls, slack, n, pid=pids)
            figures.append(result | {"pg_cpu_ms": postgres.seconds / n * 1000})
        print(f"  {processes} process(es) done", flush=True)
        return figures


def rows_for(title: str, results: dict[int, list[dict[str, float]]], n: int) -> list[Row]:
    rows = []
    for processes, figures in results.items():
        rows.append(Row(f"{title}, {processes} process(es), N={n}: all answers ÷ 2 s; CPU per conversation, the app's "
                        "processes summed / PostgreSQL's backends", f"{spread([f['ratio'] for f in figures])}; "
                        f"{spread([f['cpu_ms'] for f in figures], '{:.1f}')} / "
                        f"{spread([f['pg_cpu_ms'] for f in figures], '{:.1f}')} ms", "—", None))
    first, last = min(results), max(results)
    growth = median([f["cpu_ms"] for f in results[last]]) / median([f["cpu_ms"] for f in results[first]]) - 1
    rows.append(Row(f"  {title}: the app's CPU per conversation, {last} processes against {first}", f"{growth:+.0%}",
                    f"≤ +{GROWTH_TARGET:.0%}", growth <= GROWTH_TARGET))
    return rows


async def main_async(database: str, n: int, rounds: int) -> list[Row]:
    with fakes() as (slack, anthropic):
        anthropic.first_token_delay = MODEL_SECONDS
        anthropic.reply = "a short answer"
        for i in range(max(n, 20 * max(PROCESSES))):
            slack.add_user(f"UB{i:05d}")
        prepare_database(database, "power")
        cli(database, "budget", "set", "org", "daily", "none")
        per_person = {p: await round_of(database, slack, anthropic, p, n, rounds) for p in PROCESSES}
        cli(database, "budget", "set", "org", "daily", "1000000")
        try:
            org = {p: await round_of(database, slack, anthropic, p, n, rounds) for p in (PROCESSES[0], PROCESSES[-1])}
        finally:
            cli(database, "budget", "set", "org", "daily", "none")
    person = "per-person USD budgets" if FEATURES else "no per-person budget"
    return rows_for(person, per_person, n) + rows_for(f"{person} and an org budget", org, n)


def main() -> None:
    database = os.environ.get("BENCH_DATABASE_URL", "")
    if not database.startswith("postgres"):
        print("\nScale-out: skipped (it runs on PostgreSQL: set BENCH_DATABASE_URL)")
        return
    n = int(os.environ.get("BENCH_SCALE_N", "1000"))
    rows = asyncio.run(main_async(database, n, int(os.environ.get("BENCH_ROUNDS", "3"))))
    print_table(f"Scale-out on PostgreSQL (claude-gate serve × 1, 2, 4 sharing N={n}; fake model 2 s/answer; "
                f"{FEATURES_NAME}; this machine has {os.cpu_count()} cores, shared by the app's processes, "
                "PostgreSQL, the fakes and this client)", rows)


if __name__ == "__main__":
    main()
