"""Crash recovery with the default settings: from `kill -9` of a `claude-gate serve` process mid-answer to the
thread's cut-off line, with a second live process doing the closing (PROCESS_LEASE_SECONDS=30: renewed every 5 s,
checked every 10 s, so 25-40 s). Then, on SQLite, the same kill followed by a restart of the process at once (the
restart closes the dead process's records at start-up). On PostgreSQL with BENCH_DATABASE_URL, else a SQLite file.

Each round: a long answer (the fake model streams for minutes) is asked of the doomed process; once the fake sees
its stream, the process is killed with SIGKILL; the figure is the time until the fake Slack receives the cut-off
line in that answer's thread. The live process's own answer under way must keep going (no line in its thread).
BENCH_ROUNDS rounds (default 3); the age rule, the backstop, is given for comparison (computed, not waited for).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import ExitStack

import aiohttp

from bench.harness import (
    CHANNEL,
    Row,
    ServedApp,
    app_env,
    database_kind,
    fakes,
    median,
    post_event,
    prepare_database,
    print_table,
    spread,
    sqlite_file,
)
from bot.config import Settings
from bot.services.conversation.records import INTERRUPTED_LINE
from tests.support.fakes import FakeAnthropic, FakeSlack

TARGET_SECONDS = 60.0
LONG_ANSWER = "word " * 20_000  # 5,000 chunks of 20 characters every 0.05 s: over four minutes


def ask(slack: FakeSlack, user: str) -> dict:
    ts = slack.next_ts()
    slack.add_message(CHANNEL, ts, "<@UBOT> a long answer please", user=user)
    return {"type": "app_mention", "user": user, "text": "<@UBOT> a long answer please", "ts": ts, "channel": CHANNEL}


def line_in(slack: FakeSlack, thread_ts: str) -> float | None:
    """When (time.monotonic) the cut-off line reached the thread, if it did."""
    for i, (method, params) in enumerate(list(slack.calls)):
        if method == "chat.postMessage" and params.get("text") == INTERRUPTED_LINE \
                and params.get("thread_ts") == thread_ts:
            return slack.call_times[i]
    return None


async def until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.05)
    return found


async def kill_mid_answer(http: aiohttp.ClientSession, slack: FakeSlack, anthropic: FakeAnthropic,
                          doomed: ServedApp, user: str) -> tuple[str, float]:
    """Ask ``doomed`` a long answer, kill it with SIGKILL once its stream is under way: (the thread, when killed)."""
    streams = anthropic.in_flight
    event = ask(slack, user)
    await post_event(http, doomed.url, event)
    await until(lambda: anthropic.in_flight > streams, 60, "the doomed process's answer did not start")
    await asyncio.sleep(1.0)  # well under way
    doomed.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    doomed.process.wait(timeout=10)
    return event["ts"], killed


async def rounds_of(database: str, slack: FakeSlack, anthropic: FakeAnthropic, rounds: int,
                    restart: bool) -> list[float]:
    env = app_env(database, slack.api_url, anthropic.base_url, DEFAULT_ROLE="power")
    figures = []
    with ExitStack() as running:
        live = None
        if not restart:
            live = ServedApp(env)
            running.callback(live.stop)
            live.wait_healthy()
        async with aiohttp.ClientSession() as http:
            kept = None
            if live is not None:  # the live process's own answer, under way through every round
                kept = ask(slack, "UB00000")
                await post_event(http, live.url, kept)
            for i in range(rounds):
                doomed = ServedApp(env)
                running.callback(doomed.stop)
                doomed.wait_healthy()
                thread, killed = await kill_mid_answer(http, slack, anthropic, doomed, f"UB{i + 1:05d}")
                if restart:
                    again = ServedApp(env)
                    running.callback(again.stop)
                posted = await until(lambda: line_in(slack, thread), 120, "no cut-off line")  # noqa: B023
                figures.append(posted - killed)
                print(f"  round {i + 1}: {posted - killed:.1f} s", flush=True)
            if kept is not None and line_in(slack, kept["ts"]) is not None:
                raise RuntimeError("the live process's own answer was closed")
    return figures


async def main_async(database: str, rounds: int) -> list[Row]:
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    with fakes() as (slack, anthropic):
        anthropic.reply = LONG_ANSWER
        anthropic.chunk_delay = 0.05
        for i in range(rounds + 1):
            slack.add_user(f"UB{i:05d}")
        prepare_database(database, "power")
        rows = []
        lapsed = await rounds_of(database, slack, anthropic, rounds, restart=False)
        lease = defaults["process_lease_seconds"]
        rows.append(Row(f"{database_kind(database)}: `kill -9` mid-answer → the cut-off line in its thread, closed by "
                        f"the other live process (PROCESS_LEASE_SECONDS={lease:.0f}: renewed every {lease / 6:.0f} s, "
                        f"checked every {lease / 3:.0f} s), {rounds} rounds", spread(lapsed, "{:.1f}") + " s",
                        f"< {TARGET_SECONDS:.0f} s", median(lapsed) < TARGET_SECONDS))
        if database.startswith("sqlite"):
            restarted = await rounds_of(database, slack, anthropic, rounds, restart=True)
            rows.append(Row(f"SQLite: `kill -9` mid-answer and a restart at once → the line (start-up closes the "
                            f"records of this host's processes that no longer run), {rounds} rounds",
                            spread(restarted, "{:.1f}") + " s", f"< {TARGET_SECONDS:.0f} s",
                            median(restarted) < TARGET_SECONDS))
        age = defaults["answer_timeout_seconds"] + defaults["sweep_margin_seconds"]
        rows.append(Row("the age rule alone, the backstop (ANSWER_TIMEOUT_SECONDS + SWEEP_MARGIN_SECONDS, then up to "
                        "one SWEEP_INTERVAL_SECONDS; computed)",
                        f"{age:.0f}-{age + defaults['sweep_interval_seconds']:.0f} s", "—", None))
    return rows


def main() -> None:
    database = os.environ.get("BENCH_DATABASE_URL", "") or sqlite_file()
    rows = asyncio.run(main_async(database, int(os.environ.get("BENCH_ROUNDS", "3"))))
    print_table(f"Crash recovery on {database_kind(database)} with the default settings (claude-gate serve × 2, one "
                "killed with SIGKILL mid-answer)", rows)


if __name__ == "__main__":
    main()
