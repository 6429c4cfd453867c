"""Nothing stays in flight (docs/spend.md): the sweep closes records whose process died, charged their reservation;
real usage arriving later overwrites the estimate; records waiting for the database are kept until written."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from tenacity import wait_none

from bot.domain.decisions import Admission, Outcome
from bot.domain.requests import ChatRequest, Requester
from bot.domain.roles import Role
from bot.services.conversation.records import INTERRUPTED_LINE, sweep_in_flight
from bot.slack.directory import UserDirectory
from bot.slack.mrkdwn import mrkdwn
from bot.slack.slack_port import SlackApiPort
from bot.store.models import SpendCounter
from tests.processes.test_multiprocess import grant, mention, records
from tests.support.fakes.signing import event_body
from tests.support.harness import ON_POSTGRES, Harness, eventually
from tests.support.processes import Cluster, post_signed

INTERRUPTED = mrkdwn(INTERRUPTED_LINE)  # the interrupted answer's line as Slack shows it


async def admit(harness: Harness, user: str = "U1") -> Admission:
    harness.slack.add_user(user)
    await harness.grant(user, Role.POWER)
    decision = await harness.runtime.gate.admit_request(ChatRequest(
        requester=Requester(user, team_id="T0001"), text="a question", channel_id="C0001", thread_ts="1.000100"))
    assert isinstance(decision, Admission)
    return decision


async def sweep(harness: Harness):  # type: ignore[no-untyped-def]
    settings = harness.runtime.settings
    slack = SlackApiPort(harness.runtime.client, UserDirectory(harness.runtime.client))
    return await sweep_in_flight(harness.sessions, slack, now=harness.clock(),
                                 answer_timeout_seconds=settings.answer_timeout_seconds,
                                 margin_seconds=settings.sweep_margin_seconds)


async def counters(harness: Harness) -> dict[tuple[str, str], tuple[int, int]]:
    async with harness.sessions() as session:
        rows = await session.execute(select(SpendCounter.scope, SpendCounter.period, SpendCounter.micros,
                                            SpendCounter.tokens))
        return {(scope, period): (micros, tokens) for scope, period, micros, tokens in rows}


async def test_sweep_charges_the_reservation_and_late_usage_overwrites_it(harness: Harness) -> None:
    decision = await admit(harness)
    assert await sweep(harness) == []  # not stale yet
    settings = harness.runtime.settings
    harness.clock.advance(settings.answer_timeout_seconds + settings.sweep_margin_seconds + 1)
    (swept,) = await sweep(harness)
    assert swept.record_id == decision.record_id
    (record,) = await harness.records()
    assert (record.outcome, record.usage_source, record.cost_micros) == ("interrupted", "estimated",
                                                                         decision.reserved_micros)
    assert (record.input_tokens, record.output_tokens) == (decision.input_estimate, decision.max_tokens)
    assert (await counters(harness))[("user:U1", "day")] == (decision.reserved_micros, decision.reserved_tokens)
    await eventually(lambda: [c for c in harness.slack.calls_to("chat.postMessage")
                              if c.get("text") == INTERRUPTED and c.get("thread_ts") == "1.000100"])
    assert await sweep(harness) == []  # a conditional update: never twice

    await harness.runtime.records.finish(record_id=decision.record_id, model=decision.model, outcome=Outcome.OK,
                                           input_tokens=40, output_tokens=60, latency_ms=5, admission=decision)
    (record,) = await harness.records()
    assert (record.outcome, record.usage_source, record.input_tokens, record.output_tokens) == ("ok", "anthropic",
                                                                                                40, 60)
    assert (await counters(harness))[("user:U1", "day")] == (record.cost_micros, 100)


async def test_a_finish_waits_through_a_long_database_outage(harness: Harness) -> None:
    """The record writer never gives up while the process lives (the finisher did after ~61 s): 20 failed writes."""
    harness.runtime.records.wait = wait_none()
    decision = await admit(harness)
    failures = [OperationalError("UPDATE request_records", {}, Exception("server closed the connection"))] * 20

    def fail(*_args: object) -> None:
        if failures:
            raise failures.pop()

    event.listen(harness.runtime.engine.sync_engine, "before_cursor_execute", fail)
    try:
        await harness.runtime.records.finish(record_id=decision.record_id, model=decision.model,
                                               outcome=Outcome.OK, input_tokens=7, output_tokens=9, latency_ms=1,
                                               admission=decision)
    finally:
        event.remove(harness.runtime.engine.sync_engine, "before_cursor_execute", fail)
    (record,) = await harness.records()
    assert (record.outcome, record.input_tokens, record.output_tokens) == ("ok", 7, 9)


CLUSTER_ENV = {"ANSWER_TIMEOUT_SECONDS": "2", "SWEEP_MARGIN_SECONDS": "1", "SWEEP_INTERVAL_SECONDS": "1"}  # conftest.py


@pytest.mark.skipif(not ON_POSTGRES, reason="several serve processes share PostgreSQL: set TEST_DATABASE_URL")
async def test_kill_9_mid_answer_is_closed_as_interrupted(cluster: Cluster, database_url: str) -> None:
    slack, claude = cluster.slack, cluster.anthropic
    slack.add_user("U1")
    await grant(database_url, "U1", Role.POWER)
    (leader,) = await asyncio.to_thread(cluster.start, 1)  # the scheduler leader, which sweeps
    (worker,) = await asyncio.to_thread(cluster.start, 1)
    claude.reply = "word " * 2_000
    claude.chunk_delay = 0.2  # a long answer, caught under way
    await eventually(worker.sdk_loaded, timeout=60)  # not cut by the 2 s ANSWER_TIMEOUT_SECONDS before it starts
    async with aiohttp.ClientSession() as http:
        event = mention(slack, "U1", "a long answer please")
        assert await post_signed(http, worker.url, event_body(event)) == 200
    await eventually(lambda: claude.in_flight == 1, timeout=30)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)

    async def interrupted() -> list | None:
        rows = await records(database_url)
        return rows if rows and rows[0].outcome == "interrupted" else None

    (record,) = await eventually(interrupted, timeout=60, interval=0.5)
    assert record.usage_source == "estimated" and record.cost_micros == record.reserved_micros > 0
    await eventually(lambda: [c for c in slack.calls_to("chat.postMessage")
                              if c.get("text") == INTERRUPTED and c.get("thread_ts") == event["ts"]],
                     timeout=30)
    assert leader.process.poll() is None
