"""Slack's stop button reaching the process that is not streaming the answer: the stop is written on the record,
and the streaming process reads it (about once a second) and stops there, its reservation's unused part released;
a crashed process's answer has its session ended by the sweep that closes it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from bot.store.models import SpendCounter
from tests.processes.test_multiprocess import grant, mention, records
from tests.processes.test_process_leases import (
    LEASE,
    cut_lines,
    cut_off_from_the_database,
    in_flight_record,
    time_passes,
    two_processes,
)
from tests.support.fakes.signing import event_body
from tests.support.harness import ON_POSTGRES, eventually
from tests.support.processes import Cluster, post_signed


async def test_a_stop_received_by_another_process_stops_the_answer_where_it_streams(
        harness_factory: Callable[..., Any]) -> None:
    a, b = await two_processes(harness_factory)
    a.runtime.chat.stops.poll_seconds = 0.1
    a.slack.add_user("UOWNER")
    await a.grant("UOWNER", Role.OWNER)
    await a.command("UOWNER", "/claude-admin", "budget set org monthly 50")
    a.anthropic.reply = "word " * 400
    a.anthropic.chunk_delay = 0.05
    ts = await a.mention("U1", "a long answer please")
    await in_flight_record(a, ts)
    await eventually(lambda: a.anthropic.in_flight, timeout=10)
    await b.send_event(b.slack.press_stop("C0001", ts, "U1"))
    (record,) = await a.settled_records(1, timeout=10)
    assert (record.outcome, record.stop_requested_by) == ("stopped", "U1")
    assert record.cost_micros < record.reserved_micros
    async with a.sessions() as session:
        assert await session.scalar(select(SpendCounter.micros)) == record.cost_micros
    await eventually(lambda: a.slack.session_status("C0001", ts) == "active")
    assert "Stopped at your request" in a.slack.posted_texts("C0001")[-1]


async def test_the_sweep_of_a_lapsed_process_ends_its_answers_session(harness_factory: Callable[..., Any]) -> None:
    a, b = await two_processes(harness_factory)
    a.anthropic.reply = "word " * 200
    a.anthropic.chunk_delay = 0.2
    ts = await a.mention("U1", "a long answer please")
    await in_flight_record(a, ts)
    await eventually(lambda: a.slack.session_status("C0001", ts) == "processing")
    mend = cut_off_from_the_database(a)  # A stops renewing, as a killed process would
    try:
        await time_passes(b, 4 * LEASE)  # A's lease lapses; B, live for a period, closes A's answer
        await eventually(lambda: cut_lines(b, ts), timeout=10)
        await eventually(lambda: b.slack.session_status("C0001", ts) == "active", timeout=5)
    finally:
        mend()


CLUSTER_ENV = {"PROCESS_LEASE_SECONDS": "3"}


@pytest.mark.skipif(not ON_POSTGRES, reason="several serve processes share one PostgreSQL database")
async def test_two_serve_processes_a_stop_sent_to_the_other_one(cluster: Cluster, database_url: str) -> None:
    cluster.slack.add_user("U1")
    await grant(database_url, "U1", Role.POWER)
    cluster.anthropic.reply = "word " * 2_000
    cluster.anthropic.chunk_delay = 0.05
    servers = await asyncio.to_thread(cluster.start, 2)
    await eventually(lambda: all(server.sdk_loaded() for server in servers), timeout=60)
    asked = mention(cluster.slack, "U1", "a long answer please")
    async with aiohttp.ClientSession() as http:
        assert await post_signed(http, servers[0].url, event_body(asked)) == 200
        await eventually(lambda: any(s["text"] for s in cluster.slack.streams.values()), timeout=30)
        stop = cluster.slack.press_stop("C0001", asked["ts"], "U1")
        assert await post_signed(http, servers[1].url, event_body(stop)) == 200

    async def stopped() -> Any:
        rows = await records(database_url)
        return rows[0] if rows and rows[0].outcome == "stopped" else None

    record = await eventually(stopped, timeout=15)
    assert record.stop_requested_by == "U1" and 0 < record.output_tokens < 2_000
    await eventually(lambda: cluster.slack.session_status("C0001", asked["ts"]) == "active", timeout=10)
