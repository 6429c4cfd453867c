"""Property: whatever untrusted text (Claude's answer, a user's words, an admin's arguments, a name from
Anthropic) goes through any posting path, what Slack receives holds no broadcast, no user or group mention and no
link whose label differs from its address. Over generated strings built from Slack's markup and escapes.

The neutraliser is checked on its own over thousands of strings and chunkings, then the real app (one per module,
on its own event loop, behind its HTTP port, against the fakes) over fewer: streamed answer, posted-and-updated
answer, refusals, admin answers, offboarding with Anthropic's key names.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.app import build_app
from bot.config import Settings
from bot.domain.mentions import channel_link, group_mention, mention
from bot.domain.roles import Role
from bot.slack.safe_text import NeutralisingStream, neutralise, safe_text
from bot.store.clock import ManualClock
from bot.store.migrate import upgrade_database
from tests.support.fakes import FakeAnthropic, FakeSlack
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET, Harness, eventually
from tests.support.slack_markup import payload_problems, problems

MARKUP = ["<", ">", "!", "@", "#", "|", "&", "&lt;", "&gt;", "&amp;", "&#60;", "&#x3C;", "&#62;", "[", "]", "(", ")",
          ":", "^", " ", "\n", "!here", "!channel", "!everyone", "here", "channel", "everyone", "subteam^S0ENG",
          "@U0CEO", "U0CEO", "W0CFO", "#C0SEC", "https://evil.example", "http://x.y/a?b=1&c=2", "mailto:a@b.c",
          "www.evil.example", "Slack SSO", "date^1700000000^{date}", "\ue000", "\ue001", "\u2060", "‹", "`", "*"]
UNTRUSTED = st.lists(st.one_of(st.sampled_from(MARKUP), st.text(max_size=3)), max_size=30).map("".join)
FROM_SLACK = UNTRUSTED.map(lambda text: text.replace("\x00", ""))  # Slack never sends NUL (such events are dropped)
TEMPLATE_IDS = ("UADMIN", "UOWNER", "U1", "UVIEW", "UBOT", "S0OK", "C0OK")  # who templates mention


@settings(max_examples=1500, deadline=None)
@given(UNTRUSTED)
def test_neutralised_text_pings_nobody_and_stays_neutral(text: str) -> None:
    safe = neutralise(text)
    assert not problems(safe), (text, safe, problems(safe))
    assert neutralise(safe) == safe  # idempotent: the wire may neutralise text the stream already did


@settings(max_examples=800, deadline=None)
@given(UNTRUSTED, st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=40))
def test_a_stream_cut_anywhere_pings_nobody(text: str, cuts: list[int]) -> None:
    stream, shown, start = NeutralisingStream(), "", 0
    for size in itertools.cycle(cuts):
        if start >= len(text):
            break
        piece = stream.feed(text[start:start + size])
        shown += neutralise(piece)  # the wire neutralises each chunk again
        start += size
    shown += stream.flush()
    assert not problems(shown), (text, cuts, shown, problems(shown))


@settings(max_examples=800, deadline=None)
@given(UNTRUSTED, UNTRUSTED)
def test_the_bots_own_mentions_stay_live_and_nothing_else(before: str, after: str) -> None:
    text = f"{before}{mention('UADMIN')}{after} {group_mention('S0OK')}{channel_link('C0OK')}{before}"
    safe = safe_text(text)
    assert not problems(safe, TEMPLATE_IDS), (text, safe, problems(safe, TEMPLATE_IDS))
    assert "<@UADMIN>" in safe and "<!subteam^S0OK>" in safe and "<#C0OK>" in safe


# ---------------------------------------------------------------------------------------- through the real app


class LiveApp:
    """The real app and the fakes for a whole module, on an event loop of their own (Hypothesis calls the test
    synchronously, many times)."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-app", daemon=True)
        self.database_url = database_url
        self.harness: Harness | None = None
        self.offboards = itertools.count()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, slack: FakeSlack, anthropic: FakeAnthropic) -> Harness:
        self.thread.start()
        self.harness = self.run(self._start(slack, anthropic))
        return self.harness

    async def _start(self, slack: FakeSlack, anthropic: FakeAnthropic) -> Harness:
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        config = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url,
                          anthropic_api_key=API_KEY, anthropic_base_url=anthropic.base_url,
                          anthropic_admin_key="sk-ant-admin01-test", database_url=self.database_url)
        runtime = build_app(config, clock=clock)
        await runtime.start()
        self.runner = web.AppRunner(runtime.web_app(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        harness = Harness(runtime, f"http://127.0.0.1:{self.runner.addresses[0][1]}", aiohttp.ClientSession(), slack,
                          anthropic, clock)
        for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("U1", Role.POWER)):
            slack.add_user(user, email=f"{user.lower()}@example.com")
            await harness.grant(user, role)
        slack.add_user("UVIEW")
        anthropic.add_org_user("user_u1", "u1@example.com", "U One")
        return harness

    async def _stop(self) -> None:
        assert self.harness is not None
        await self.harness.http.close()
        await self.runner.cleanup()
        await self.harness.runtime.close()

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    url = f"sqlite:///{tmp_path_factory.mktemp('property') / 'gate.db'}"
    upgrade_database(url)
    with pytest.MonkeyPatch.context() as env, FakeSlack() as slack, FakeAnthropic() as anthropic:
        env.setenv("ANTHROPIC_API_KEY", API_KEY)
        app = LiveApp(url)
        app.start(slack, anthropic)
        yield app
        app.stop()


def fresh(harness: Harness) -> None:
    """Forget what the fakes saw; a new minute for the rate limits."""
    harness.slack.reset_calls()
    harness.slack.responses.clear()
    harness.slack.streams.clear()
    harness.clock.advance(61)


LIVE_CHANNELS = ("C0001", "C0002", "C0003", "C0004")  # the conversations' own channels, which alerts name


def assert_slack_got_nothing_live(
    harness: Harness, text: str, allowed: tuple[str, ...] = TEMPLATE_IDS + LIVE_CHANNELS
) -> None:
    sent = [params for _method, params in harness.slack.calls] + [r["body"] for r in harness.slack.responses]
    shown = [stream["text"] for stream in harness.slack.streams.values()]
    found = payload_problems(sent, allowed) + [p for s in shown for p in problems(s, allowed)]
    assert not found, (text, found)


async def conversation(harness: Harness, channel: str, user: str, text: str) -> None:
    """Mention the bot and wait for its answer, refusal or hint."""
    count = len(await harness.records())
    told = len(harness.ephemerals_for(user))
    await harness.mention(user, text, channel=channel)

    async def finished() -> bool:
        rows = await harness.records()
        if len(rows) > count:
            return all(r.outcome != "admitted" for r in rows)
        return len(harness.ephemerals_for(user)) > told  # a hint, recorded nowhere

    await eventually(finished, timeout=10)
    await asyncio.sleep(0.1)  # the answer's last write


PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(FROM_SLACK)
def test_claudes_answer_streamed_pings_nobody(live: LiveApp, text: str) -> None:
    harness = live.harness
    assert harness is not None
    fresh(harness)
    harness.anthropic.reply = text + " ."  # never empty
    harness.anthropic.chunk_chars = 2
    live.run(conversation(harness, "C0001", "U1", "answer"))
    assert_slack_got_nothing_live(harness, text)


@PROPERTY
@given(FROM_SLACK)
def test_claudes_answer_posted_and_updated_pings_nobody(live: LiveApp, text: str) -> None:
    harness = live.harness
    assert harness is not None
    fresh(harness)
    harness.slack.fail_next("chat.startStream", "not_allowed")  # remembered for C0002: posted and updated there
    harness.anthropic.reply = text + " ."
    harness.anthropic.chunk_chars = 3
    live.run(conversation(harness, "C0002", "U1", "answer"))
    assert not harness.slack.calls_to("chat.appendStream")
    assert_slack_got_nothing_live(harness, text)


@PROPERTY
@given(FROM_SLACK)
@example("https://evil.example:a@b.c/x")  # a password in a URL: the owner's alert names the channel, nobody else
def test_a_users_words_echoed_or_refused_ping_nobody(live: LiveApp, text: str) -> None:
    harness = live.harness
    assert harness is not None
    fresh(harness)
    harness.anthropic.reply = lambda body: "You said: " + str(body["messages"][-1]["content"])
    live.run(conversation(harness, "C0003", "U1", f"{text} ok"))  # answered: Claude echoes what it was given
    live.run(conversation(harness, "C0003", "U1", f"--model {text} ok"))  # quoted in a refusal, or answered
    live.run(conversation(harness, "C0003", "UVIEW", f"{text} ok"))  # refused: "Ask <@UADMIN> …"
    assert_slack_got_nothing_live(harness, text)


@PROPERTY
@given(FROM_SLACK)
@example("U0CEO")
@example("<@U0CEO> <!channel> <https://evil.example|Slack SSO>")
def test_admin_arguments_echoed_in_answers_ping_nobody(live: LiveApp, text: str) -> None:
    harness = live.harness
    assert harness is not None
    fresh(harness)
    for command in (f"keys add {text} env:NOT_SET", f"policy set user workspace {text}", f"whois {text}",
                    f"grant {text} user", "policy user", "keys", f"usage {text}", f"groups map {text} user"):
        live.run(harness.command("UOWNER", "/claude-admin", command))
    live.run(harness.command("UOWNER", "/claude-admin", "policy set user workspace default"))
    # An admin who names a person (`whois U0CEO`, `grant U0CEO user`) gets an answer that names them: the bot's own
    # template mentioning the user the command is about, in an answer only the admin sees. Nobody else may be pinged.
    named = tuple(re.findall(r"[UW][A-Z0-9]{2,}", text))
    # `usage` lists the spend by channel: links to the conversations' own channels, which ping nobody
    assert_slack_got_nothing_live(harness, text, TEMPLATE_IDS + LIVE_CHANNELS + named)


@PROPERTY
@given(FROM_SLACK, FROM_SLACK)
@example("<&|&lt;>", "y")  # raw brackets around an entity opener: found by random generation once
def test_anthropic_key_names_in_the_offboarding_answer_ping_nobody(live: LiveApp, name: str, other: str) -> None:
    harness = live.harness
    assert harness is not None
    fresh(harness)
    n = next(live.offboards)
    harness.anthropic.add_org_key(f"apikey_a{n}", name or "x", created_by="user_u1")
    harness.anthropic.add_org_key(f"apikey_b{n}", other or "y", created_by="user_u1")
    live.run(harness.grant("U1", Role.POWER))
    live.run(harness.command("UADMIN", "/claude-admin", "offboard <@U1>"))
    live.run(harness.command("UADMIN", "/claude-admin", "keys sync"))
    live.run(harness.command("UADMIN", "/claude-admin", "keys"))
    live.run(harness.grant("U1", Role.POWER))
    assert_slack_got_nothing_live(harness, name + other)
