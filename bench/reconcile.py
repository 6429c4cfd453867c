"""What reconciliation costs: a UTC day of 100,000 request records (4 keys × 3 models) read by key and model and
paired with Anthropic's rows, against a plain count of the same day's records in the same process (the
baseline: the least any read of that day costs). SQLite, the embedded database.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench.harness import Row, median, print_table
from bot.services.keys.admin_api import ReportedCost
from bot.services.spend.reconcile import anthropic_ids, our_costs, reconcile
from bot.store.db import Database, create_engine
from bot.store.migrate import upgrade_database
from bot.store.models import ApiKey, RequestRecord

RECORDS = 100_000
DAY = date(2026, 12, 6)
KEYS = ("default", "ci", "eng", "sales")
MODELS = ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5")
RUNS = 5


async def _fill(db: Database) -> None:
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    async with db.sessions.begin() as session:
        await session.execute(insert(ApiKey), [
            {"label": key, "workspace": "default", "anthropic_key_id": f"apikey_{key}", "created_at": start,
             "rotate_days": 90, "status": "active"} for key in KEYS])
        batch = []
        for i in range(RECORDS):
            batch.append({"created_at": start + timedelta(seconds=i * 86_400 / RECORDS), "slack_user_id": f"U{i % 500}",
                          "role": "user", "model": MODELS[i % 3], "key_label": KEYS[i % 4], "input_tokens": 900,
                          "output_tokens": 300, "cost_micros": 1_000 + i % 7, "admitted": True, "outcome": "ok"})
            if len(batch) == 10_000:
                await session.execute(insert(RequestRecord), batch)
                batch = []


async def _measure(db: Database) -> tuple[float, float, int]:
    theirs = [ReportedCost(DAY, f"apikey_{key}", model, 40_000_000) for key in KEYS for model in MODELS]
    baseline, full = [], []
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    pairs = 0
    for _ in range(RUNS):
        began = time.perf_counter()
        async with db.reads() as session:
            await session.scalar(select(func.count()).select_from(RequestRecord).where(
                RequestRecord.created_at >= start, RequestRecord.created_at < start + timedelta(days=1)))
        baseline.append(time.perf_counter() - began)
        began = time.perf_counter()
        async with db.reads() as session:
            ours = await our_costs(session, DAY, DAY)
            ids = await anthropic_ids(session)
        pairs = len(reconcile(DAY, DAY, ours, ids, theirs).pairs)
        full.append(time.perf_counter() - began)
    return median(baseline), median(full), pairs


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade_database(url)

        async def run() -> tuple[float, float, int]:
            db = Database.of(create_engine(url))
            try:
                await _fill(db)
                return await _measure(db)
            finally:
                await db.engine.dispose()

        baseline, full, pairs = asyncio.run(run())
    print_table(f"Reconciliation of a day of {RECORDS:,} records (SQLite, median of {RUNS})", [
        Row("count the day's records (baseline)", f"{baseline * 1000:.0f} ms", "", None),
        Row(f"our cost by key × model, paired with Anthropic's ({pairs} pairs)",
            f"{full * 1000:.0f} ms ({full / baseline:.1f}× the count)", "≤ 2 s a day", full <= 2.0),
    ])


if __name__ == "__main__":
    main()
