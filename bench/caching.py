"""Dollars per 10-turn thread, with and without prompt caching (docs/spend.md).

The real app in this process (SQLite, this round's features on: bench/harness.py) against the fake Anthropic, which
reports cache_creation_input_tokens and cache_read_input_tokens the way the API does, with each model's minimum
cacheable prefix (4,096 tokens for Haiku 4.5): the thread opens with a document of about 5,400 tokens, so its
prefix is cached, then TURNS - 1 short follow-ups by the same person (role `user`: Haiku) in the thread, each asked
once the answer before it is recorded. The cost is the sum of the thread's request records, as `usage` and the
budgets count it (cache writes 1.25×, reads 0.1× the input price).

Without caching: the same thread with no `cache_control` breakpoint. There is no setting for that, so this process
replaces `bot.services.conversation.claude.with_cache_breakpoints` with one that returns the prompt as it is;
each variant has a
fresh fake (an empty cache) and database. BENCH_THREAD_TURNS changes the number of turns (default 10).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from sqlalchemy import select

from bench.harness import (
    CHANNEL,
    Row,
    app_in_process,
    bench_settings,
    fakes,
    features_env,
    post_event,
    prepare_database,
    print_table,
    sqlite_file,
)
from bot.runtime import Runtime
from bot.services.conversation import claude
from bot.store.models import RequestRecord

TURNS = int(os.environ.get("BENCH_THREAD_TURNS", "10"))
DOCUMENT = "Please review this design note carefully. " * 900  # ~5,400 tokens: above Haiku 4.5's 4,096 minimum
ANSWER = "The note is sound; the open question is who owns the migration and by when. " * 10  # 150 words
USER = "UCACHE1"


@contextmanager
def breakpoints(on: bool) -> Iterator[None]:
    original = claude.with_cache_breakpoints
    if not on:
        claude.with_cache_breakpoints = lambda system, messages: (system, list(messages))  # type: ignore[assignment]
    try:
        yield
    finally:
        claude.with_cache_breakpoints = original


async def recorded(app: Runtime, count: int, timeout: float = 60.0) -> list[RequestRecord]:
    """The ``count`` records, once none is in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with app.sessions() as session:
            rows = list(await session.scalars(select(RequestRecord).order_by(RequestRecord.id)))
        if len(rows) >= count and all(row.outcome != "admitted" for row in rows):
            if bad := [row.outcome for row in rows if row.outcome != "ok"]:
                raise RuntimeError(f"a turn was not answered: {bad}")
            return rows
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{count} records were not written within {timeout} s")


async def thread(caching: bool) -> dict[str, Any]:
    database = sqlite_file()
    prepare_database(database, "user")
    with fakes() as (slack, anthropic), breakpoints(caching):
        anthropic.reply = ANSWER
        slack.add_user(USER)
        settings = bench_settings(slack, anthropic, database, default_role="user",
                                  secret_policy=features_env()["SECRET_POLICY"])
        async with app_in_process(settings) as (app, url), aiohttp.ClientSession() as http:
            root = None
            for turn in range(TURNS):
                ts = slack.next_ts()
                text = f"<@{slack.bot_user_id}> " + (DOCUMENT if turn == 0 else f"follow-up question {turn}?")
                slack.add_message(CHANNEL, ts, text, user=USER, thread_ts=root)
                event = {"type": "app_mention", "user": USER, "text": text, "ts": ts, "channel": CHANNEL}
                await post_event(http, url, event | ({"thread_ts": root} if root else {}))
                records = await recorded(app, turn + 1)
                root = root or ts
            marked = any("cache_control" in str(r["body"]) for r in anthropic.message_requests())
    return {"usd": sum(r.cost_micros for r in records) / 1e6, "marked": marked, "model": records[0].model,
            **{field: sum(getattr(r, field) for r in records)
               for field in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")}}


def main() -> None:
    on, off = asyncio.run(thread(caching=True)), asyncio.run(thread(caching=False))
    if not on["marked"] or off["marked"]:
        raise RuntimeError("the variants did not differ in their cache_control breakpoints")
    print_table(f"Prompt caching: one {TURNS}-turn thread ({on['model']}, a ~5,400-token document, then follow-ups)", [
        Row(f"dollars per {TURNS}-turn thread, recorded cost: with prompt caching / without",
            f"${on['usd']:.4f} / ${off['usd']:.4f} ({on['usd'] / off['usd']:.2f}×)", "—", None),
        Row("  input tokens: uncached / cache writes / cache reads, with caching; without",
            f"{on['input_tokens']:,} / {on['cache_write_tokens']:,} / {on['cache_read_tokens']:,}; "
            f"{off['input_tokens']:,}", "—", None),
    ])


if __name__ == "__main__":
    main()
