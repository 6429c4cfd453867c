"""Channel messages that are not for the bot (``message.channels`` delivers every one) cost no database statement
and no Slack call: counted, through the real app over HTTP, once every listener they started has ended.

Their CPU is bench/ignored_messages.py's; this counts the work instead of timing it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_bolt.middleware.async_custom_middleware import AsyncCustomMiddleware
from sqlalchemy import event

from bot.listeners.assistant import PanelOnly
from bot.listeners.middleware import PlainMiddleware, plain
from tests.support.harness import Harness, eventually


def channel_messages(harness: Harness) -> list[dict[str, Any]]:
    """What people (and other apps) say in a channel the bot is in, none of it for the bot."""
    def ts() -> str:
        return harness.slack.next_ts()
    return [
        {"type": "message", "channel_type": "channel", "channel": "C0001", "user": "UCHAT", "text": "lunch?",
         "ts": ts()},
        {"type": "message", "channel_type": "group", "channel": "G0001", "user": "UCHAT", "text": "in private",
         "ts": ts()},
        {"type": "message", "channel_type": "channel", "channel": "C0001", "user": "UCHAT",
         "text": "ask <@UOTHER> about it", "ts": ts()},
        {"type": "message", "channel_type": "channel", "channel": "C0001", "subtype": "bot_message",
         "bot_id": "BOTHER", "text": "deploy finished", "ts": ts()},
        {"type": "message", "channel_type": "channel", "channel": "C0001", "subtype": "message_changed",
         "ts": ts(), "message": {"type": "message", "user": "UCHAT", "text": "lunch at 12?", "ts": "1.000001"}},
        {"type": "message", "channel_type": "channel", "channel": "C0001", "subtype": "channel_join",
         "user": "UNEW", "text": "<@UNEW> has joined the channel", "ts": ts()},
    ]


async def test_a_channel_message_not_for_the_bot_makes_no_database_statement_and_no_slack_call(
        harness: Harness) -> None:
    statements: list[str] = []
    event.listen(harness.runtime.engine.sync_engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: statements.append(statement))
    listeners = harness.runtime.listeners

    async def settled() -> None:
        """Every listener these events started has ended (Bolt starts a listener's task before it acknowledges; a
        few turns of the loop after the acknowledgement it has registered itself in ``listeners``)."""
        for _ in range(5):
            await eventually(lambda: not listeners.tasks)
            await asyncio.sleep(0)

    # Bolt asks auth.test once per process, on its first request of any kind: not this path's cost
    await harness.send_event(channel_messages(harness)[0])
    await settled()
    harness.slack.calls.clear()
    statements.clear()

    messages = channel_messages(harness) * 3
    for message in messages:
        await harness.send_event(message)
    await settled()
    assert statements == []
    assert harness.slack.calls == []
    assert await harness.records() == []


async def test_every_global_middleware_is_called_without_bolt_building_its_arguments(harness: Harness) -> None:
    """Bolt's function middleware builds ~30 keyword arguments per call: the app registers none (the CPU of an
    ignored message halved with this, bench/ignored_messages.py), and Bolt's assistant middleware is asked only
    about the panel's own events."""
    middleware = harness.runtime.bolt._async_middleware_list
    assert not [m.name for m in middleware if isinstance(m, AsyncCustomMiddleware)]
    assert sum(isinstance(m, PlainMiddleware) for m in middleware) >= 5
    assert sum(isinstance(m, PanelOnly) for m in middleware) == 1


def test_plain_middleware_refuses_an_argument_it_would_not_pass() -> None:
    async def wants_say(say: Any, next: Any) -> None:
        await next()

    with pytest.raises(TypeError, match="say"):
        plain(wants_say)
