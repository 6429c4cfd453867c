"""What /metrics costs: the counters a request increments (the same calls ChatService makes for one answered
request), against the gate's own time, and the render of one scrape. Counters only on the request path; the text
format is made when Prometheus asks.

Rounds of 10,000 requests; medians over the rounds, with the range in brackets.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.harness import Row, median, print_table
from bot.domain.decisions import RefusalReason
from bot.metrics import BudgetUse, Metrics

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
REQUESTS = 10_000
GATE_P50_MS = 1.9  # the gate's own p50 on SQLite (gate_overhead, README's latest run), for scale
CPU_PER_CONVERSATION_MS = 12.7  # Claude Gate's CPU per conversation at N = 500 (concurrency, README's latest run)


def one_request(metrics: Metrics, i: int) -> None:
    surface = ("mention", "dm", "assistant")[i % 3]
    if i % 10 == 0:
        metrics.gate_decided(surface, "refused", RefusalReason.RATE_LIMITED.value, 0.002)
        return
    metrics.gate_decided(surface, "admitted", "", 0.002)
    metrics.answer_began()
    metrics.first_text(surface, 0.6)
    metrics.answer_finished(surface=surface, model="claude-haiku-4-5", role=("user", "power")[i % 2],
                            error_kind=None, input_tokens=1200, output_tokens=300, cost_usd=0.0027,
                            cache_read_tokens=800)


def main() -> None:
    metrics = Metrics()

    async def budgets() -> list[BudgetUse]:
        return [BudgetUse("org", "org", "month", 5000.0, 1234.5)] + [
            BudgetUse("group", f"team-{n}", "day", 50.0, 12.0) for n in range(20)]

    metrics.budget_source = budgets
    per_request: list[float] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for i in range(REQUESTS):
            one_request(metrics, i)
        per_request.append((time.perf_counter() - started) / REQUESTS * 1e6)
    renders: list[float] = []
    size = 0
    for _ in range(ROUNDS * 5):
        started = time.perf_counter()
        size = len(asyncio.run(metrics.render()))
        renders.append((time.perf_counter() - started) * 1e3)
    p50 = median(per_request)
    print_table("/metrics: cost on the request path and per scrape", [
        Row("counters and histograms one answered request updates (µs)",
            f"{p50:.1f} ({min(per_request):.1f}–{max(per_request):.1f})", "—", None),
        Row(f"the same as a share of the gate's p50 ({GATE_P50_MS} ms)", f"{p50 / (GATE_P50_MS * 1000):.1%}",
            "≤ 5 %", p50 / (GATE_P50_MS * 1000) <= 0.05),
        Row(f"the same as a share of the CPU one conversation costs ({CPU_PER_CONVERSATION_MS} ms)",
            f"{p50 / (CPU_PER_CONVERSATION_MS * 1000):.2%}", "≤ 1 %", p50 / (CPU_PER_CONVERSATION_MS * 1000) <= 0.01),
        Row(f"render of one scrape ({size:,} bytes, 21 budgets), ms, off the request path",
            f"{median(renders):.2f} ({min(renders):.2f}–{max(renders):.2f})", "—", None),
    ])


if __name__ == "__main__":
    main()
