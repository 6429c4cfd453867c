"""The cost of the messages the bot ignores. Subscribed to message.channels / message.groups (thread follow-ups),
the bot receives every message of every channel it is in; nearly all of them are ruled out by their shape.

Measured in-process, in CPU time (time.process_time), over N signed events dispatched to the real Bolt app:
- an ignored channel message, whole path: signature check, Bolt's parsing and middleware, our filter, the ack
  (target ≤ 0.2 ms of CPU each);
- the filter alone (bot.listeners.events.may_be_follow_up);
- a thread reply by someone who never asked the bot there: the one database lookup it costs.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

from slack_bolt.request.async_request import AsyncBoltRequest

from bench.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET, Row, print_table
from bot.app import build_app
from bot.config import Settings
from bot.listeners.events import may_be_follow_up
from bot.store.migrate import upgrade_database
from tests.fakes import FakeAnthropic, FakeSlack
from tests.fakes.signing import event_body, json_body, sign

N = int(os.environ.get("BENCH_MESSAGES", "2000"))
TARGET_MS = 0.2


def signed(event: dict) -> tuple[str, dict[str, str]]:
    raw = json_body(event_body(event))
    return raw, sign(raw, SIGNING_SECRET)


async def cpu_per_event(app, events: list[tuple[str, dict[str, str]]]) -> float:
    """CPU milliseconds per event, dispatched one after the other and awaited to the end of their listeners."""
    await app.bolt.async_dispatch(AsyncBoltRequest(body=events[0][0], headers=events[0][1]))  # warm up
    started = time.process_time()
    for raw, headers in events:
        response = await app.bolt.async_dispatch(AsyncBoltRequest(body=raw, headers=headers))
        assert response.status in (200, 404), response.status
    await asyncio.sleep(0)
    return (time.process_time() - started) * 1000 / len(events)


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
            chatter = [signed({"type": "message", "channel": "C0001", "channel_type": "channel", "user": "U1",
                               "text": f"lunch at {i}?", "ts": f"1700000{i:03d}.000100"}) for i in range(N)]
            replies = [signed({"type": "message", "channel": "C0001", "channel_type": "channel", "user": "U2",
                               "text": "+1", "ts": f"1700001{i:03d}.000100", "thread_ts": "1700000000.000100"})
                       for i in range(min(N, 500))]
            ignored = await cpu_per_event(app, chatter)
            lookup = await cpu_per_event(app, replies)
            event = {"user": "U1", "ts": "2.0", "channel_type": "channel", "text": "lunch?"}
            started = time.process_time()
            for _ in range(N * 100):
                may_be_follow_up(event)
            alone = (time.process_time() - started) * 1000 / (N * 100)
        finally:
            await app.close()
    return [
        Row(f"ignored channel message, whole path (signature, Bolt, filter, ack), N={N}", f"{ignored:.3f} ms CPU",
            f"≤ {TARGET_MS} ms", ignored <= TARGET_MS),
        Row("  of which the shape filter", f"{alone * 1000:.2f} µs CPU", "—", None),
        Row("thread reply by someone who never asked there (one indexed lookup), whole path",
            f"{lookup:.3f} ms CPU", "—", None),
    ]


def main() -> None:
    print_table("Ignored channel messages (message.channels / message.groups)", asyncio.run(measure()))


if __name__ == "__main__":
    main()
