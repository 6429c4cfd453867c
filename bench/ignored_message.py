"""A channel message that is not for the bot: its CPU per message in Claude Gate beside the bare Bolt ``AsyncApp``
handling the same signed event, in one process, in alternating batches (``message.channels`` delivers every
message of every channel the bot is in, so this path must cost next to nothing).

Both apps get the same signed body through ``async_dispatch`` (Bolt verifies the signature, parses, runs its
middleware and a ``message`` listener that returns), and Claude Gate's own signature check before parsing is
counted too; aiohttp's server-side HTTP parsing, the same for both, is not. CPU is the process's own
(``time.process_time``), so other processes on the machine change it far less than wall time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bench.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET, Row, print_table
from bot.app import Runtime, build_app
from bot.config import Settings
from bot.store.migrate import upgrade_database
from tests.fakes import FakeAnthropic, FakeSlack
from tests.fakes.signing import event_body, json_body, sign

BATCH = int(os.environ.get("BENCH_IGNORED_BATCH", "500"))
ROUNDS = int(os.environ.get("BENCH_IGNORED_ROUNDS", "10"))
TARGET_MS = 0.2

Dispatch = Callable[[bytes, dict[str, str]], Awaitable[Any]]


def channel_message(n: int) -> tuple[bytes, dict[str, str]]:
    """A person's plain message in a channel, mentioning nobody: what ``message.channels`` sends most."""
    ts = f"1700000000.{n:06d}"
    raw = json_body(event_body({"type": "message", "channel_type": "channel", "channel": "CBENCH", "user": "UCHAT",
                                "text": "lunch at noon?", "ts": ts, "event_ts": ts}, event_id=f"EvIGN{n:08d}"))
    return raw.encode(), sign(raw, SIGNING_SECRET)


async def settle() -> None:
    """Until every listener task Bolt started has run to its end."""
    while len(asyncio.all_tasks()) > 1:
        await asyncio.sleep(0)


async def cpu_per_message(dispatch: Dispatch, messages: list[tuple[bytes, dict[str, str]]]) -> float:
    """CPU per message of one batch, its garbage collection included (else the next batch, of the other app, would
    pay for it)."""
    gc.collect()
    started = time.process_time()
    for body, headers in messages:
        response = await dispatch(body, headers)
        assert response.status == 200, response.status
    await settle()
    gc.collect()
    return (time.process_time() - started) * 1000 / len(messages)


def gate_dispatch(runtime: Runtime) -> Dispatch:
    async def dispatch(body: bytes, headers: dict[str, str]) -> Any:
        assert runtime.signed_by_slack(body, headers)  # what Runtime.web_app does before Bolt parses anything
        return await runtime.bolt.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
    return dispatch


def bare_dispatch(slack_api_url: str) -> Dispatch:
    bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack_api_url), signing_secret=SIGNING_SECRET)

    @bolt.event("message")
    async def ignore(event: dict[str, Any]) -> None:
        if event.get("channel_type") != "im":
            return

    async def dispatch(body: bytes, headers: dict[str, str]) -> Any:
        return await bolt.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
    return dispatch


async def measure(database_url: str) -> tuple[list[float], list[float], int]:
    os.environ["ANTHROPIC_API_KEY"] = API_KEY
    upgrade_database(database_url)
    with FakeSlack() as slack, FakeAnthropic() as anthropic:
        settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=slack.api_url, anthropic_api_key=API_KEY,
                            anthropic_base_url=anthropic.base_url, database_url=database_url)
        runtime = build_app(settings)
        await runtime.start()
        variants = {"gate": gate_dispatch(runtime), "bare": bare_dispatch(slack.api_url)}
        samples: dict[str, list[float]] = {"gate": [], "bare": []}
        n = 0
        try:
            for round_ in range(ROUNDS + 1):  # round 0 warms both (Bolt's auth.test, imports, caches)
                if round_ == 1:
                    gc.freeze()  # what start-up built is not garbage: collections scan only what the batches made
                for name, dispatch in variants.items():
                    messages = [channel_message(n + i) for i in range(BATCH)]
                    n += BATCH
                    slack_calls = len(slack.calls)
                    per_message = await cpu_per_message(dispatch, messages)
                    if round_:
                        samples[name].append(per_message)
                        assert len(slack.calls) == slack_calls, "an ignored message made a Slack call"
        finally:
            await runtime.close()
        return samples["gate"], samples["bare"], n


def main() -> None:
    gate, bare, _ = asyncio.run(measure(f"sqlite:///{tempfile.mkdtemp()}/bench.db"))
    ours, floor = statistics.median(gate), statistics.median(bare)
    print_table(f"A channel message not for the bot ({ROUNDS} alternating batches of {BATCH} per app)", [
        Row("ignored channel message: CPU per message, Claude Gate", f"{ours:.3f} ms", f"≤ {TARGET_MS} ms",
            ours <= TARGET_MS),
        Row("  the same event on the bare Bolt AsyncApp (baseline, same run)", f"{floor:.3f} ms", "—", None),
        Row("  Claude Gate ÷ bare Bolt", f"{ours / floor:.2f}×", "—", None),
    ])


if __name__ == "__main__":
    main()
