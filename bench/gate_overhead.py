"""Gate overhead: admit_request + finishing the record, per request, against a no-op baseline.

Runs in one process against the real database (SQLite file, or PostgreSQL with BENCH_DATABASE_URL),
many users so the rpm limit never refuses; prints p50/p99 in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

from bot.config import Settings
from bot.domain.decisions import Admission, Outcome
from bot.domain.requests import ChatRequest, Requester
from bot.domain.roles import Role
from bot.services.gate import Gate
from bot.services.keys import ensure_default_key
from bot.services.roles import grant_role
from bot.services.usage import complete_request
from bot.store.clock import system_clock
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_database

USERS = 200
TRIALS = 2000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(database_url: str) -> dict[str, tuple[float, float]]:
    os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-api03-bench-key-0000")
    upgrade_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        await ensure_default_key(session, system_clock, rotate_days=90)
        for i in range(USERS):
            await grant_role(session, system_clock, actor_id="bench", actor_role=None, target_id=f"UB{i:05d}",
                             role=Role.ADMIN)
    gate = Gate(sessions, Settings(database_url=database_url), system_clock)
    requests = [ChatRequest(requester=Requester(user_id=f"UB{i % USERS:05d}", name="b"), text="x")
                for i in range(TRIALS)]

    async def baseline(_request: ChatRequest) -> None:
        await asyncio.sleep(0)

    async def gated(request: ChatRequest) -> None:
        decision = await gate.admit_request(request)
        assert isinstance(decision, Admission)
        await complete_request(sessions, record_id=decision.record_id, model=decision.model, outcome=Outcome.OK,
                               input_tokens=10, output_tokens=10, latency_ms=1)

    results: dict[str, list[float]] = {"baseline": [], "gate": []}
    for request in requests:  # interleaved, so drift and noise hit both alike
        for name, fn in (("baseline", baseline), ("gate", gated)):
            started = time.perf_counter()
            await fn(request)
            results[name].append((time.perf_counter() - started) * 1000)
    await engine.dispose()
    return {name: (statistics.median(v), percentile(v, 0.99)) for name, v in results.items()}


def main() -> None:
    targets = [("sqlite", f"sqlite:///{tempfile.mkdtemp()}/bench.db")]
    if pg := os.environ.get("BENCH_DATABASE_URL"):
        targets.append(("postgresql", pg))
    print(f"gate overhead: admit + record per request, {TRIALS} sequential requests, {USERS} users")
    print(f"{'database':<11} {'p50 ms':>8} {'p99 ms':>8} {'target p50/p99':>15} {'met':>4}")
    for name, url in targets:
        figures = asyncio.run(measure(url))
        base50, base99 = figures["baseline"]
        p50, p99 = figures["gate"][0] - base50, figures["gate"][1] - base99
        met = "yes" if p50 <= 3 and p99 <= 10 else "no"
        print(f"{name:<11} {p50:>8.2f} {p99:>8.2f} {'3 / 10':>15} {met:>4}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
