"""`serve` is healthy before the Anthropic SDK has loaded (its import is most of the start-up); a question asked as
soon as it is healthy waits for the SDK and is answered."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest

from bot.services.conversation.claude import ClaudeFailure, classify
from tests.support.fakes.signing import event_body
from tests.support.harness import eventually
from tests.support.processes import Cluster, post_signed


def test_the_app_and_its_command_line_load_without_the_anthropic_sdk() -> None:
    probe = "import sys, bot.app, bot.cli; print('anthropic' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_a_timeout_is_classified_without_waiting_for_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.services.conversation import claude

    monkeypatch.setattr(claude, "_SDK", None)  # as in a process whose SDK is still loading
    assert classify(TimeoutError()).kind == "timeout"
    assert classify(RuntimeError("boom")).kind == "internal"
    assert classify(ClaudeFailure("key", "m")).kind == "key"


CLUSTER_ENV = {"DEFAULT_ROLE": "user"}  # the cluster fixture (conftest.py) starts serve with these


async def test_a_question_asked_as_soon_as_serve_is_healthy_is_answered(cluster: Cluster) -> None:
    cluster.slack.add_user("U1")
    (server,) = await asyncio.to_thread(cluster.start, 1)
    ts = cluster.slack.next_ts()
    cluster.slack.add_message("C0001", ts, "<@UBOT> first question", user="U1")
    async with aiohttp.ClientSession() as http:
        status = await post_signed(http, server.url, event_body(
            {"type": "app_mention", "user": "U1", "text": "<@UBOT> first question", "ts": ts, "channel": "C0001"}))
    assert status == 200
    await eventually(lambda: cluster.slack.posted_texts("C0001") == ["Echo: first question"], timeout=60)
    assert "Anthropic SDK loaded" in server.log()
