"""The cost of the messages the bot ignores. Subscribed to message.channels / message.groups (thread follow-ups),
the bot receives every message of every channel it is in; nearly all of them are ruled out by their shape.

Measured in-process, in CPU time (time.process_time: other processes on the machine move it far less than wall
time), over signed events dispatched to the real Bolt app:
- an ignored channel message, whole path: our signature check before parsing, Bolt's verification, parsing and
  middleware, our filter, the ack (target ≤ 0.2 ms of CPU each), beside the baseline of the same run: the bare Bolt
  ``AsyncApp`` with one ``message`` listener that returns, given the same events. Batches of the two alternate and
  each pays its own garbage collection; aiohttp's server-side HTTP parsing, the same for both, is not counted;
- the filter alone (bot.listeners.events.may_be_follow_up);
- a thread reply by someone who never asked the bot there: the one database lookup it costs.
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
from bot.app import build_app
from bot.config import Settings
from bot.listeners.events import may_be_follow_up
from bot.runtime import Runtime
from bot.store.migrate import upgrade_database
from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.fakes.signing import event_body, json_body, sign

N = int(os.environ.get("BENCH_MESSAGES", "2000"))
ROUNDS = int(os.environ.get("BENCH_IGNORED_ROUNDS", "8"))  # alternating batches of N / ROUNDS per app
TARGET_MS = 0.2

Signed = tuple[str, dict[str, str]]
Dispatch = Callable[[str, dict[str, str]], Awaitable[Any]]


def signed(event: dict) -> Signed:
    raw = json_body(event_body(event))
    return raw, sign(raw, SIGNING_SECRET)


async def settle() -> None:
    """Until every listener task Bolt started has run to its end."""
    while len(asyncio.all_tasks()) > 1:
        await asyncio.sleep(0)


async def cpu_per_event(dispatch: Dispatch, events: list[Signed]) -> float:
    """CPU milliseconds per event, dispatched one after the other and awaited to the end of their listeners, the
    garbage they leave collected (else the next batch, of the other app, would pay for it)."""
    gc.collect()
    started = time.process_time()
    for raw, headers in events:
        response = await dispatch(raw, headers)
        assert response.status in (200, 404), response.status
    await settle()
    gc.collect()
    return (time.process_time() - started) * 1000 / len(events)


def gate_dispatch(app: Runtime) -> Dispatch:
    async def dispatch(raw: str, headers: dict[str, str]) -> Any:
        assert app.signed_by_slack(raw.encode(), headers)  # what Runtime.web_app does before Bolt parses anything
        return await app.bolt.async_dispatch(AsyncBoltRequest(body=raw, headers=headers))
    return dispatch


def bare_dispatch(slack_api_url: str) -> Dispatch:
    """The baseline: Bolt's AsyncApp alone, a ``message`` listener that lets a channel message go."""
    bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack_api_url), signing_secret=SIGNING_SECRET)

    @bolt.event("message")
    async def ignore(event: dict[str, Any]) -> None:
        if event.get("channel_type") != "im":
            return

    async def dispatch(raw: str, headers: dict[str, str]) -> Any:
        return await bolt.async_dispatch(AsyncBoltRequest(body=raw, headers=headers))
    return dispatch


def chatter(start: int, count: int) -> list[Signed]:
    return [signed({"type": "message", "channel": "C0001", "channel_type": "channel", "user": "U1",
                    "text": f"lunch at {i}?", "ts": f"17000{i:05d}.000100"}) for i in range(start, start + count)]


async def measure() -> list[Row]:
    os.environ["ANTHROPIC_API_KEY"] = API_KEY
    with FakeSlack() as slack, FakeAnthropic() as anthropic, tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade_database(url)
        settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=slack.api_url, anthropic_api_key=API_KEY,
                            anthropic_base_url=anthropic.base_url, database_url=url, log_level="WARNING")
        app = build_app(settings)
        await app.start()
        try:
            variants = {"gate": gate_dispatch(app), "bare": bare_dispatch(slack.api_url)}
            samples: dict[str, list[float]] = {"gate": [], "bare": []}
            batch, sent = max(1, N // ROUNDS), 0
            for round_ in range(ROUNDS + 1):  # round 0 warms both (Bolt's auth.test, imports, caches)
                if round_ == 1:
                    gc.freeze()  # what start-up built is not garbage: collections scan what the batches made
                for name, dispatch in variants.items():
                    slack_calls = len(slack.calls)
                    per_event = await cpu_per_event(dispatch, chatter(sent, batch))
                    sent += batch
                    if round_:  # round 0 has each app's one auth.test (Bolt's, on its first request)
                        assert len(slack.calls) == slack_calls, "an ignored channel message made a Slack call"
                        samples[name].append(per_event)
            ignored, bare = statistics.median(samples["gate"]), statistics.median(samples["bare"])
            replies = [signed({"type": "message", "channel": "C0001", "channel_type": "channel", "user": "U2",
                               "text": "+1", "ts": f"1700001{i:03d}.000100", "thread_ts": "1700000000.000100"})
                       for i in range(min(N, 500))]
            lookup = await cpu_per_event(gate_dispatch(app), replies)
            event = {"user": "U1", "ts": "2.0", "channel_type": "channel", "text": "lunch?"}
            started = time.process_time()
            for _ in range(N * 100):
                may_be_follow_up(event)
            alone = (time.process_time() - started) * 1000 / (N * 100)
        finally:
            gc.unfreeze()
            await app.close()
    return [
        Row(f"ignored channel message, whole path (signature, Bolt, filter, ack), {ROUNDS} batches of {batch}",
            f"{ignored:.3f} ms CPU", f"≤ {TARGET_MS} ms", ignored <= TARGET_MS),
        Row("  baseline, same run: the bare Bolt AsyncApp given the same events", f"{bare:.3f} ms CPU", "—", None),
        Row("  Claude Gate ÷ bare Bolt", f"{ignored / bare:.2f}×", "—", None),
        Row("  of which the shape filter", f"{alone * 1000:.2f} µs CPU", "—", None),
        Row("thread reply by someone who never asked there (one indexed lookup), whole path",
            f"{lookup:.3f} ms CPU", "—", None),
    ]


def main() -> None:
    print_table("Ignored channel messages (message.channels / message.groups)", asyncio.run(measure()))


if __name__ == "__main__":
    main()
