"""2,000 requests with Anthropic and Slack faults mixed in, against a real `claude-gate serve` process: it never
exits, every request ends with exactly one finished record, and its memory does not keep growing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from bot.store.db import create_engine, session_factory
from bot.store.models import RequestRecord
from tests.support.fakes.signing import event_body
from tests.support.harness import eventually
from tests.support.processes import Cluster, post_signed

TOTAL = 2000
BATCH = 100
USERS = 100
ANTHROPIC_FAULTS = [("auth", {}), ("invalid_request", {}), ("mid_stream_error", {"deltas": 1}),
                    ("rate_limit", {"retry_after": "0", "should_retry": False}), ("drop", {}),
                    ("overloaded", {"should_retry": False}), ("server", {"should_retry": False})]
SLACK_FAULTS = [("chat.startStream", "ratelimited"), ("chat.appendStream", "ratelimited"),
                ("chat.startStream", "not_allowed"), ("chat.postMessage", "ratelimited"),
                ("chat.stopStream", "internal_error"), ("users.info", "ratelimited")]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def settled_count(database_url: str) -> tuple[int, int]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        total = await session.scalar(select(func.count()).select_from(RequestRecord))
        open_ = await session.scalar(select(func.count()).where(RequestRecord.outcome == "admitted"))
    await engine.dispose()
    return int(total or 0), int(open_ or 0)


async def test_two_thousand_requests_with_faults(database_url: str, fake_slack, fake_anthropic,
                                                 tmp_path: Path) -> None:
    rng = random.Random(20261123)
    cluster = Cluster(database_url, fake_slack, fake_anthropic, tmp_path,
                      extra_env={"DEFAULT_ROLE": "admin", "LOG_LEVEL": "WARNING"})
    fake_anthropic.reply = "a short answer with a few words"
    for i in range(USERS):
        fake_slack.add_user(f"US{i:04d}")
    try:
        (server,) = await asyncio.to_thread(cluster.start, 1)
        pid = server.process.pid
        sent = 0
        rss_after_warmup = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for batch in range(TOTAL // BATCH):
                for kind, opts in rng.sample(ANTHROPIC_FAULTS, 3):
                    fake_anthropic.fail_next(kind, times=rng.randint(1, 5), **opts)
                for method, error in rng.sample(SLACK_FAULTS, 2):
                    fake_slack.fail_next(method, error, retry_after=0, times=rng.randint(1, 3))
                events = []
                for _ in range(BATCH):
                    user, ts = f"US{sent % USERS:04d}", fake_slack.next_ts()
                    fake_slack.add_message("CSOAK", ts, f"<@UBOT> question {sent}", user=user)
                    events.append({"type": "app_mention", "user": user, "text": f"<@UBOT> question {sent}",
                                   "ts": ts, "channel": "CSOAK"})
                    sent += 1
                statuses = await asyncio.gather(*(post_signed(http, server.url, event_body(e)) for e in events))
                assert set(statuses) == {200}

                async def batch_done(expected: int = sent) -> bool:
                    total, still_open = await settled_count(database_url)
                    return total == expected and still_open == 0

                await eventually(batch_done, timeout=120, interval=0.2)
                fake_slack.reset_calls()
                fake_anthropic.requests.clear()
                assert server.process.poll() is None, server.log()
                if batch == 3:
                    rss_after_warmup = rss_kib(pid)
        rss_at_end = rss_kib(pid)
    finally:
        cluster.stop()
    assert sent == TOTAL
    assert await settled_count(database_url) == (TOTAL, 0)  # one finished record per request, none lost
    growth_mib = (rss_at_end - rss_after_warmup) / 1024
    assert growth_mib < 40, f"RSS grew {growth_mib:.1f} MiB over {TOTAL - 4 * BATCH} requests"
