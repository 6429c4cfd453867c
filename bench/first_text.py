"""First visible text: from the moment Claude produces its first token to the moment Slack receives it.

Runs the real app (signed HTTP events → Bolt → gate → Anthropic SDK → slack_sdk) against the fake Slack and
fake Anthropic of tests/support/fakes on 127.0.0.1, with a 200 ms first-token delay and 50 ms between deltas. Both
fakes note their times on the same clock (time.monotonic()). Also prints how many chat.appendStream calls per
minute many concurrent answers make, against Slack's Tier 4 budget. Run: ``python -m bench.first_text``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from bench.harness import Row, median, percentile, print_table
from bot.app import build_app
from bot.config import Settings
from bot.domain.roles import Role
from bot.services.access.roles import grant_role
from bot.slack.stream import APPENDS_PER_MINUTE
from bot.store.clock import system_clock
from bot.store.migrate import upgrade_database
from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.fakes.anthropic import last_user_text
from tests.support.fakes.signing import event_body, json_body, sign

SECRET = "bench-signing-secret"
ANSWERS = 20
TARGET_MS = 500.0
FILLER = "lorem ipsum dolor sit amet " * 12


def first_text_of(params: dict[str, Any]) -> str:
    chunks = params.get("chunks") or []
    return (params.get("markdown_text") or "") + "".join(c.get("text", "") for c in chunks if isinstance(c, dict))


class Clocked(FakeAnthropic):
    """The fake Anthropic, noting when it produces each text delta."""

    def __init__(self) -> None:
        super().__init__()
        self.deltas: list[tuple[float, str]] = []

    def sse(self, event: str, data: dict[str, Any]) -> bytes:  # type: ignore[override]
        if event == "content_block_delta":
            self.deltas.append((time.monotonic(), data["delta"]["text"]))
        return FakeAnthropic.sse(event, data)


async def run(*, streaming: bool, concurrent: int, answers: int = ANSWERS) -> tuple[list[float], float]:
    """Latencies in ms (one per answer) and chat.appendStream calls per minute over the run."""
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-api03-bench-key-0000"
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade_database(url)
    with FakeSlack() as slack, Clocked() as claude:
        slack.streaming_supported = streaming
        claude.reply = lambda body: f"Echo: {last_user_text(body)} {FILLER}"
        claude.chunk_chars, claude.first_token_delay, claude.chunk_delay = 10, 0.2, 0.05
        gate = build_app(Settings(slack_bot_token="xoxb-bench", slack_signing_secret=SECRET,
                                  slack_api_url=slack.api_url, anthropic_api_key="sk-ant-api03-bench-key-0000",
                                  anthropic_base_url=claude.base_url, database_url=url), clock=system_clock)
        await gate.start()
        runner = web.AppRunner(gate.web_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        events_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        users = [f"UB{i:03d}" for i in range(concurrent)]
        async with gate.sessions.begin() as session:
            for user in users:
                slack.add_user(user)
                await grant_role(session, system_clock, actor_id="bench", actor_role=None, target_id=user,
                                 role=Role.POWER)
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            for batch in range(0, answers, concurrent):
                questions = [f"q{n:03d}" for n in range(batch, min(answers, batch + concurrent))]
                for user, question in zip(users, questions, strict=False):
                    ts = slack.next_ts()
                    text = f"<@{slack.bot_user_id}> {question}"
                    slack.add_message("C0001", ts, text, user=user)
                    body = json_body(event_body({"type": "app_mention", "user": user, "text": text, "ts": ts,
                                                 "channel": "C0001"}))
                    async with http.post(events_url, data=body.encode(), headers=sign(body, SECRET)) as response:
                        assert response.status == 200
                await wait_for_answers(slack, batch + len(questions))
        elapsed = time.monotonic() - started
        await runner.cleanup()
        await gate.close()
        first_delta = {}
        for at, text in claude.deltas:
            first_delta.setdefault(text, at)
        latencies = []
        for at, (_name, params) in zip(list(slack.call_times), list(slack.calls), strict=False):
            text = first_text_of(params)
            if text.startswith("Echo: q") and text[:10] in first_delta:
                latencies.append((at - first_delta.pop(text[:10])) * 1000)
        appends = sum(1 for name, _ in slack.calls if name == "chat.appendStream")
        return latencies, appends / elapsed * 60


async def wait_for_answers(slack: FakeSlack, count: int) -> None:
    deadline = time.monotonic() + 60
    while sum(1 for text in slack.posted_texts("C0001") if text.rstrip().endswith(FILLER.rstrip())) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("answers did not complete within 60 s")
        await asyncio.sleep(0.05)


def main() -> None:
    rows: list[Row] = []
    for path, streaming, concurrent in (("streaming", True, 1), ("streaming", True, 10),
                                        ("post-and-update fallback", False, 1)):
        latencies, appends_per_minute = asyncio.run(run(streaming=streaming, concurrent=concurrent))
        worst = max(latencies)
        rows.append(Row(f"first visible text after the model's first token, {path}, {concurrent} answer(s) at once "
                        f"({len(latencies)} answers): p50 / p95 / max",
                        f"{median(latencies):.1f} / {percentile(latencies, 0.95):.1f} / {worst:.1f} ms",
                        f"≤ {TARGET_MS:.0f} ms", worst <= TARGET_MS))
        if streaming:
            rows.append(Row(f"  chat.appendStream calls per minute, {concurrent} answer(s) at once",
                            f"{appends_per_minute:.0f}", f"≤ {APPENDS_PER_MINUTE} (Tier 4)",
                            appends_per_minute <= APPENDS_PER_MINUTE))
    print_table("First visible text (real app; fake Slack and Anthropic on 127.0.0.1; first token after 200 ms, "
                "then a delta every 50 ms)", rows)


if __name__ == "__main__":
    main()
