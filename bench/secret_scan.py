"""Secret scanning overhead (SECRET_POLICY): screening a 4,000-character message, p50/p99 over many runs.

Three texts: plain prose (the common case: only the detectors' literal triggers are searched), code full of
near-misses (URLs, base64, `eyJ`, `AKIA` words that trigger patterns but are no secret), and prose with two
secrets (found and redacted). Target: p99 ≤ 1 ms for a 4,000-character message.
"""

from __future__ import annotations

import time

from bench.harness import Row, median, percentile, print_table
from bot.domain.secrets import screen

RUNS = 5_000
TARGET_MS = 1.0
LENGTH = 4_000


def _texts() -> dict[str, str]:
    prose = ("The quarterly review covers hiring, the platform migration and the budget for next year. "
             "Please summarise the open questions and who owns each of them. ") * 40
    near_misses = ("see https://example.com/a/b?c=d and postgresql://user:password@localhost/app; "
                   "payload = 'eyJhbGciOi' + rest; AKIA-style ids; xoxb-your-token; sk-ant-... in docs; ") * 40
    secret = "gh" + "p_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98"
    with_secrets = (prose[:1800] + f" token {secret} " + prose[:1800] + " key AK" + "IAQ3EGUFZK7XMPL4RT ") * 2
    return {name: (text * 2)[:LENGTH] for name, text in
            (("plain prose", prose), ("code with near-misses", near_misses), ("prose with 2 secrets", with_secrets))}


def main() -> None:
    rows = []
    for name, text in _texts().items():
        screen(text)  # warm up
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            screen(text)
            timings.append((time.perf_counter() - started) * 1000)
        p99 = percentile(timings, 0.99)
        rows.append(Row(f"screen a {len(text):,}-char message, {name}: p50 / p99",
                        f"{median(timings):.3f} / {p99:.3f} ms", f"p99 ≤ {TARGET_MS:g} ms", p99 <= TARGET_MS))
    print_table(f"Secret scanning ({RUNS:,} runs each)", rows)


if __name__ == "__main__":
    main()
