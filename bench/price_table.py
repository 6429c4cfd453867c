"""What the price table costs: building it from genai-prices' shipped data at start-up (time and peak RSS of a
fresh interpreter, against the same interpreter importing only the pricing rules), and pricing one request with
the integer table against genai-prices' own price function (which the request path never calls).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal

from bench.harness import Row, median, print_table
from bot.domain.pricing import cost_micros, price_of
from bot.price_source import list_prices

STARTS = 5
CALLS = 20_000
PROBE = """
import json, sys, time
started = time.perf_counter()
import bot.domain.pricing
if sys.argv[1] == "table":
    from bot.price_source import list_prices
    list_prices()
elapsed = time.perf_counter() - started
with open("/proc/self/status") as status:  # ru_maxrss would carry the forking parent's peak over exec
    rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
print(json.dumps({"s": elapsed, "rss_kb": rss_kb}))
"""


def _start(kind: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, kind], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out))


def _per_call_ms(func: object, calls: int) -> float:
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            func()  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1000 / calls)
    return median(timings)


def main() -> None:
    bare = [_start("bare") for _ in range(STARTS)]
    table = [_start("table") for _ in range(STARTS)]
    bare_s, table_s = median([b["s"] for b in bare]), median([t["s"] for t in table])
    bare_rss, table_rss = median([b["rss_kb"] for b in bare]), median([t["rss_kb"] for t in table])

    prices = list_prices()
    price = price_of("claude-haiku-5-5", prices)
    assert price is not None

    def ours() -> int:
        return cost_micros(price, input_tokens=3_000, output_tokens=500, cache_write_tokens=2_000,
                           cache_read_tokens=40_000)

    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=45_000, output_tokens=500, cache_write_tokens=2_000, cache_read_tokens=40_000)

    def theirs() -> Decimal:
        return calc_price(usage, model_ref="claude-haiku-5-5", provider_id="anthropic").total_price

    ours_ms, theirs_ms = _per_call_ms(ours, CALLS), _per_call_ms(theirs, CALLS // 20)
    rows = [
        Row("start-up: import the pricing rules (baseline)", f"{bare_s * 1000:.0f} ms, RSS {bare_rss / 1024:.1f} MB",
            "", None),
        Row("start-up: … and build the price table", f"{table_s * 1000:.0f} ms, RSS {table_rss / 1024:.1f} MB",
            "", None),
        Row("the table adds", f"{(table_s - bare_s) * 1000:.0f} ms ({table_s / bare_s:.1f}×), "
            f"{(table_rss - bare_rss) / 1024:.1f} MB", "≤ 500 ms, ≤ 50 MB",
            table_s - bare_s <= 0.5 and table_rss - bare_rss <= 50 * 1024),
        Row("price one request: the integer table", f"{ours_ms * 1000:.2f} µs", "", None),
        Row("price one request: genai-prices' calc_price", f"{theirs_ms * 1000:.1f} µs "
            f"({theirs_ms / ours_ms:.0f}× the table)", "never on the request path", None),
    ]
    print_table(f"Price table ({STARTS} fresh interpreters each; {CALLS:,} pricings)", rows)


if __name__ == "__main__":
    main()
