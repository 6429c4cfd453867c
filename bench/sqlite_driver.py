"""SQLite on the event loop (bot/store/sqlite_inline.py) beside SQLAlchemy's stock aiosqlite driver, in one run.

Two `claude-gate serve` processes, each on a SQLite file of its own, with this round's features on
(bench/harness.py): `python -m bot serve` (the inline driver) and `python -m bench.stock_aiosqlite serve` (the same
app on stock aiosqlite: one pooled connection, the same pragmas, BEGIN IMMEDIATE). BENCH_DRIVER_N simultaneous
mentions (default 200), the fake model taking 2 s per answer, BENCH_ROUNDS rounds alternating between the two:
CPU per conversation of each process (from /proc) and all answers ÷ 2 s. The inline driver stays only while it
is cheaper here than the stock one.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import ExitStack

from bench.harness import (
    FEATURES_NAME,
    MODEL_SECONDS,
    Row,
    ServedApp,
    app_env,
    burst,
    fakes,
    features_env,
    median,
    prepare_database,
    print_table,
    spread,
    sqlite_file,
)

DRIVERS = {"inline (bot/store/sqlite_inline.py)": "bot", "stock aiosqlite": "bench.stock_aiosqlite"}


async def measure(n: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    with fakes() as (slack, anthropic), ExitStack() as running:
        anthropic.first_token_delay = MODEL_SECONDS
        anthropic.reply = "a short answer"
        for i in range(max(n, 20)):
            slack.add_user(f"UB{i:05d}")
        apps = {}
        for name, module in DRIVERS.items():
            database = sqlite_file()
            prepare_database(database, "power")
            app = ServedApp(app_env(database, slack.api_url, anthropic.base_url, DEFAULT_ROLE="power",
                                    **features_env()), module)
            running.callback(app.stop)
            app.wait_healthy()
            await burst(app.url, slack, 20)  # warm: the SDK, caches, connection pools
            apps[name] = app
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in apps}
        for _ in range(rounds):  # alternating, so drift and noise hit both alike
            for name, app in apps.items():
                figures[name].append(await burst(app.url, slack, n, pid=app.process.pid))
    return figures


def main() -> None:
    n = int(os.environ.get("BENCH_DRIVER_N", "200"))
    figures = asyncio.run(measure(n, int(os.environ.get("BENCH_ROUNDS", "3"))))
    (inline, ours), (stock, theirs) = figures.items()
    cpu, stock_cpu = median([f["cpu_ms"] for f in ours]), median([f["cpu_ms"] for f in theirs])
    print_table(f"SQLite driver: inline vs stock aiosqlite (claude-gate serve, N={n}, fake model 2 s/answer; "
                f"{FEATURES_NAME})", [
        Row(f"CPU per conversation at N={n}: {inline} / {stock}",
            f"{spread([f['cpu_ms'] for f in ours], '{:.1f}')} / {spread([f['cpu_ms'] for f in theirs], '{:.1f}')} ms "
            f"({cpu / stock_cpu:.2f}×)", "below stock aiosqlite's", cpu < stock_cpu),
        Row(f"  all answers ÷ 2 s at N={n}: inline / stock aiosqlite",
            f"{spread([f['ratio'] for f in ours])} / {spread([f['ratio'] for f in theirs])}", "—", None),
    ])


if __name__ == "__main__":
    main()
