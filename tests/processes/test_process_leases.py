"""Crash recovery in seconds: each process holds a lease of its own, and any live process closes the answers of a
process whose lease lapsed (bot/services/conversation/process_leases.py), with the sweep's charge and thread
line; a late finish
replaces the charge and posts no second line; on SQLite, start-up closes at once the answers of this host's processes
that no longer run. Leases are injected short here; the default's time from `kill -9` to the line is in bench/."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from bot.domain.decisions import Admission
from bot.domain.requests import ChatRequest, Requester
from bot.domain.roles import Role
from bot.services.conversation.process_leases import ProcessLease
from bot.services.conversation.records import INTERRUPTED_LINE
from bot.slack.mrkdwn import mrkdwn
from bot.store.clock import system_clock
from bot.store.db import create_engine, session_factory
from bot.store.leases import renew_process_lease
from bot.store.models import ProcessLease as LeaseRow
from bot.store.models import RequestRecord
from tests.processes.test_multiprocess import grant, mention, records
from tests.processes.test_sweep import counters
from tests.support.fakes.signing import event_body
from tests.support.harness import API_KEY, ON_POSTGRES, Harness, eventually
from tests.support.processes import Cluster, post_signed

INTERRUPTED = mrkdwn(INTERRUPTED_LINE)  # the interrupted answer's line as Slack shows it

LEASE = 0.6  # PROCESS_LEASE_SECONDS in-process: renewed every 0.1 s, checked every 0.2 s, on the manual clock


async def time_passes(harness: Harness, seconds: float) -> None:
    """Move the manual clock by ``seconds`` in steps of 0.1 s, each given the real time for a renewal and a check."""
    for _ in range(round(seconds / 0.1)):
        harness.clock.advance(0.1)
        await asyncio.sleep(0.25)


def cut_lines(harness: Harness, thread_ts: str) -> list[dict[str, Any]]:
    return [c for c in harness.slack.calls_to("chat.postMessage")
            if c.get("text") == INTERRUPTED and c.get("thread_ts") == thread_ts]


async def in_flight_record(harness: Harness, thread_ts: str) -> RequestRecord:
    async def found() -> RequestRecord | None:
        return next((r for r in await harness.records() if r.thread_ts == thread_ts and r.outcome == "admitted"),
                    None)

    return await eventually(found, timeout=10)


async def lease_of(harness: Harness, holder: str) -> LeaseRow | None:
    async with harness.sessions() as session:
        return await session.get(LeaseRow, holder, populate_existing=True)


def cut_off_from_the_database(harness: Harness) -> Callable[[], None]:
    """Every statement of ``harness``'s process fails, as if its network to the database were cut; returns the
    function that mends it."""

    def fail(*_args: object) -> None:
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(harness.runtime.engine.sync_engine, "before_cursor_execute", fail)
    return lambda: event.remove(harness.runtime.engine.sync_engine, "before_cursor_execute", fail)


async def two_processes(harness_factory: Callable[..., Any]) -> tuple[Harness, Harness]:
    a, b = await harness_factory(process_lease_seconds=LEASE), await harness_factory(process_lease_seconds=LEASE)
    for harness in (a, b):
        await harness.runtime.hold_lease()
    a.slack.add_user("U1")
    a.slack.add_user("U2")
    await a.grant("U1", Role.POWER)
    await a.grant("U2", Role.POWER)
    return a, b


async def test_a_process_holds_a_lease_its_records_carry_and_a_clean_stop_drops_it(harness: Harness) -> None:
    lease = await harness.runtime.hold_lease()
    row = await lease_of(harness, lease.holder)
    assert row is not None and row.expires_at > harness.clock()
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    decision = await harness.runtime.gate.admit_request(ChatRequest(
        requester=Requester("U1", team_id="T0001"), text="a question", channel_id="C0001", thread_ts="1.000100"))
    assert isinstance(decision, Admission)
    (record,) = await harness.records()
    assert record.process_id == lease.holder
    await lease.stop()
    assert await lease_of(harness, lease.holder) is None  # stopped cleanly: nothing to wait for


async def test_another_process_closes_the_answers_of_a_lapsed_lease_and_leaves_its_own(
        harness_factory: Callable[..., Any]) -> None:
    """Not the scheduler leader (no scheduler runs here): any live process closes them. Order: admitted → A's lease
    lapses → A's record closed → its line posted; B's own answer goes on and ends ok, with no line."""
    a, b = await two_processes(harness_factory)
    a.anthropic.reply = "word " * 200
    a.anthropic.chunk_delay = 0.2  # both answers are under way for 10 s
    a_ts = await a.mention("U1", "a long answer please")
    b_ts = await b.mention("U2", "a long answer please", channel="C0002")
    a_record, b_record = await in_flight_record(a, a_ts), await in_flight_record(b, b_ts)
    assert (a_record.process_id, b_record.process_id) == (a.runtime.lease.holder, b.runtime.lease.holder)
    await time_passes(b, LEASE)  # B may judge now (its lease held for one period)
    assert b.runtime.lease.may_judge and await b.runtime.lease.close_lapsed() == []  # A's lease is live
    mend = cut_off_from_the_database(a)  # A stops renewing (as a killed process would)
    try:
        a_lease = await lease_of(b, a_record.process_id)
        assert a_lease is not None and a_lease.expires_at > a_record.created_at
        while True:  # time passes: B renews its own lease, A cannot
            rows = {r.id: r for r in await b.records()}
            assert rows[a_record.id].outcome == "admitted"  # never closed while A's lease is live
            a.clock.advance(0.1)
            if a.clock() >= a_lease.expires_at:  # lapsed (a lease is live while expires_at > now)
                lapsed = time.monotonic()
                break
            await asyncio.sleep(0.25)

        async def closed() -> RequestRecord | None:
            rows = {r.id: r for r in await b.records()}
            return rows[a_record.id] if rows[a_record.id].outcome == "interrupted" else None

        closed_record = await eventually(closed, timeout=10)
        closed_at = time.monotonic()
        await eventually(lambda: cut_lines(b, a_ts), timeout=10)
        line_index = next(i for i, (name, params) in enumerate(list(b.slack.calls))
                          if name == "chat.postMessage" and params.get("text") == INTERRUPTED)
        assert lapsed <= b.slack.call_times[line_index]  # the line after the lapse (and after the close: one path)
        assert closed_at - lapsed < 10
        assert (closed_record.usage_source, closed_record.cost_micros) == ("estimated", closed_record.reserved_micros)
        assert (closed_record.input_tokens, closed_record.output_tokens) == (closed_record.input_estimate,
                                                                            closed_record.max_tokens)
        async def forgotten() -> bool:  # once its records are closed and their threads told (a line, the session)
            return await lease_of(b, a_record.process_id) is None

        assert await eventually(forgotten, timeout=5)  # a lapsed lease is forgotten with its records closed
        rows = {r.id: r for r in await b.records()}
        assert rows[b_record.id].outcome == "admitted" and cut_lines(b, b_ts) == []  # B's own: untouched
    finally:
        mend()
    a.anthropic.chunk_delay = 0.0
    await b.settled_records(2, timeout=20)
    rows = {r.id: r for r in await b.records()}
    assert rows[b_record.id].outcome == "ok" and cut_lines(b, b_ts) == []


async def test_a_late_finish_replaces_the_interrupted_charge_and_keeps_one_line(
        harness_factory: Callable[..., Any]) -> None:
    """A was only cut off from the database: its answer went on, and once the database answers again its finish
    writes the real tokens over the interrupted charge; the thread keeps the one line, A renews its lease anew."""
    a, b = await two_processes(harness_factory)
    a.anthropic.reply = "word " * 100
    a.anthropic.chunk_delay = 0.1
    ts = await a.mention("U1", "a long answer please")
    record = await in_flight_record(a, ts)
    reserved = (await counters(b))[("user:U1", "day")]  # the admission's reservation
    mend = cut_off_from_the_database(a)
    try:
        await time_passes(b, 2 * LEASE)

        async def interrupted() -> RequestRecord | None:
            (row,) = await b.records()
            return row if row.outcome == "interrupted" else None

        swept = await eventually(interrupted, timeout=10)
        await eventually(lambda: cut_lines(b, ts), timeout=10)
        assert swept.cost_micros == swept.reserved_micros == reserved[0]
        assert (await counters(b))[("user:U1", "day")] == reserved  # charged the reservation, as the sweep does
    finally:
        mend()  # the database answers A again: the record writer writes its finish
    async def real() -> RequestRecord | None:
        (row,) = await b.records()
        return row if row.outcome == "ok" else None

    finished = await eventually(real, timeout=20)
    assert finished.id == record.id and finished.usage_source == "anthropic"
    assert finished.output_tokens == a.anthropic.output_tokens_for("word " * 100)
    assert finished.cost_micros < swept.cost_micros
    assert (await counters(b))[("user:U1", "day")] == (
        finished.cost_micros, finished.input_tokens + finished.output_tokens + finished.cache_write_tokens
        + finished.cache_read_tokens)
    await eventually(lambda: lease_of(b, a.runtime.lease.holder), timeout=10)  # renewed anew
    await time_passes(b, 2 * LEASE)  # a second line would come from the next checks
    assert len(cut_lines(b, ts)) == 1


async def test_after_an_outage_of_the_database_itself_no_answer_is_closed(
        harness_factory: Callable[..., Any]) -> None:
    """Every lease lapsed while the database was away: a process back judges others only after one lease period
    of its own, in which A (back too) renews; A's answer, under way throughout, ends ok with no line."""
    a, b = await two_processes(harness_factory)
    a.anthropic.reply = "word " * 400
    a.anthropic.chunk_delay = 0.2  # under way for 20 s
    ts = await a.mention("U1", "a long answer please")
    record = await in_flight_record(a, ts)
    await time_passes(b, LEASE)
    mend_a, mend_b = cut_off_from_the_database(a), cut_off_from_the_database(b)
    try:
        await time_passes(b, 2 * LEASE)  # both leases lapse
        mend_b()
        await b.runtime.lease.renew()
        assert not b.runtime.lease.may_judge  # just back: it may not judge yet
        assert await b.runtime.lease.close_lapsed() == []  # (A's lease has lapsed and A is still cut off)
    finally:
        mend_a()
    await time_passes(b, 2 * LEASE)  # both renew; B may judge again, and A's lease is live
    assert b.runtime.lease.may_judge
    (row,) = await b.records()
    assert row.outcome == "admitted" and cut_lines(b, ts) == []
    a.anthropic.chunk_delay = 0.0
    (finished,) = await b.settled_records(1, timeout=20)
    assert (finished.id, finished.outcome, finished.usage_source) == (record.id, "ok", "anthropic")
    assert cut_lines(b, ts) == []


@pytest.mark.skipif(ON_POSTGRES, reason="the start-up rule of SQLite (one host)")
async def test_on_sqlite_start_up_closes_at_once_the_records_of_a_process_that_no_longer_runs(
        harness_factory: Callable[..., Any]) -> None:
    """Both leases are still live: the dead process's records are closed at start-up all the same (its pid is gone
    from this host), a live process's records on the same file are left alone."""
    older = await harness_factory()
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    host = socket.gethostname()
    holders = {"dead": f"{host}:{dead.pid}:dead00", "alive": f"{host}:{os.getpid()}:alive0"}
    older.slack.add_user("U1")
    await older.grant("U1", Role.POWER)
    for name, holder in holders.items():
        async with older.sessions.begin() as session:
            await renew_process_lease(session, holder, older.clock(), 30)
        older.runtime.gate.process_id = holder
        decision = await older.runtime.gate.admit_request(ChatRequest(
            requester=Requester("U1", team_id="T0001"), text=f"asked by the {name} one", channel_id="C0001",
            thread_ts=f"1.00010{len(name)}"))
        assert isinstance(decision, Admission)
    restarted = await harness_factory()
    await restarted.runtime.hold_lease()  # start-up, at once (no clock moved, no check waited for)
    by_holder = {r.process_id: r for r in await restarted.records()}
    assert by_holder[holders["dead"]].outcome == "interrupted"
    assert by_holder[holders["dead"]].cost_micros == by_holder[holders["dead"]].reserved_micros
    assert by_holder[holders["alive"]].outcome == "admitted"
    await eventually(lambda: cut_lines(restarted, by_holder[holders["dead"]].thread_ts))
    assert cut_lines(restarted, by_holder[holders["alive"]].thread_ts) == []


async def test_claude_gate_chat_holds_a_lease_and_its_answer_is_closed_once_it_is_killed(
        harness: Harness, database_url: str) -> None:
    """`chat` in a terminal holds a lease like `serve`: killed mid-answer, its record is closed by a live process
    (on SQLite at that process's start, at once; on PostgreSQL once the 1.5 s lease lapses)."""
    await harness.grant("U0CLI", Role.USER)
    harness.anthropic.reply = "word " * 2_000
    harness.anthropic.chunk_delay = 0.2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_", "DATABASE_URL"))} | {
        "DATABASE_URL": database_url, "ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": harness.anthropic.base_url,
        "PROCESS_LEASE_SECONDS": "1.5"}
    chat = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "chat", "--as", "U0CLI", "a long one",
                                                env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL)
    try:
        async def answering() -> RequestRecord | None:
            rows = await harness.records()
            return rows[0] if rows and rows[0].process_id and harness.anthropic.in_flight else None

        record = await eventually(answering, timeout=60, interval=0.1)
        assert record.process_id.split(":")[1] == str(chat.pid) and await lease_of(harness, record.process_id)
    finally:
        chat.kill()
        await chat.wait()
    live = ProcessLease(db=harness.runtime.db, clock=system_clock, slack=harness.runtime.slack,
                        gate=harness.runtime.gate, lease_seconds=1.5)
    await live.start()
    try:
        async def closed() -> RequestRecord | None:
            (row,) = await harness.records()
            return row if row.outcome == "interrupted" else None

        row = await eventually(closed, timeout=15, interval=0.1)
        assert row.cost_micros == row.reserved_micros and row.usage_source == "estimated"
    finally:
        await live.stop()


CLUSTER_ENV = {"PROCESS_LEASE_SECONDS": "3"}  # renewed every 0.5 s, checked every 1 s; answers may take 300 s


async def lease_expiry(database_url: str, holder: str) -> datetime | None:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        found = await session.scalar(select(LeaseRow.expires_at).where(LeaseRow.holder == holder))
    await engine.dispose()
    return found


@pytest.mark.skipif(not ON_POSTGRES, reason="several serve processes share PostgreSQL: set TEST_DATABASE_URL")
async def test_kill_9_of_one_serve_process_is_closed_by_the_other_within_seconds(cluster: Cluster,
                                                                               database_url: str) -> None:
    slack, claude = cluster.slack, cluster.anthropic
    for user in ("U1", "U2"):
        slack.add_user(user)
        await grant(database_url, user, Role.POWER)
    killed, live = await asyncio.to_thread(cluster.start, 2)
    claude.reply = "word " * 2_000
    claude.chunk_delay = 0.2  # long answers, caught under way
    await eventually(lambda: killed.sdk_loaded() and live.sdk_loaded(), timeout=60)
    events = {}
    async with aiohttp.ClientSession() as http:
        for user, server in (("U1", killed), ("U2", live)):
            events[user] = mention(slack, user, "a long answer please")
            assert await post_signed(http, server.url, event_body(events[user])) == 200
    await eventually(lambda: claude.in_flight == 2, timeout=30)
    rows = await eventually(lambda: _two_in_flight(database_url), timeout=30)
    by_thread = {r.thread_ts: r for r in rows}
    doomed, kept = by_thread[events["U1"]["ts"]], by_thread[events["U2"]["ts"]]
    assert doomed.process_id and kept.process_id and doomed.process_id != kept.process_id
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(timeout=10)
    killed_at = datetime.now(UTC)
    expiry = await lease_expiry(database_url, doomed.process_id)
    assert expiry is not None and doomed.created_at < killed_at < expiry  # admitted, killed, then the lease lapses
    to_monotonic = time.monotonic() - time.time()
    lapse = expiry.timestamp() + to_monotonic

    seen: list[tuple[float, str]] = []

    async def closed() -> bool:
        row = next(r for r in await records(database_url) if r.id == doomed.id)
        seen.append((time.monotonic(), row.outcome))
        return row.outcome == "interrupted"

    await eventually(closed, timeout=30, interval=0.1)
    assert all(outcome == "admitted" for at, outcome in seen if at < lapse)  # not closed before the lapse
    assert seen[0][1] == "admitted"

    def line_at() -> float | None:
        return next((slack.call_times[i] for i, (name, params) in enumerate(list(slack.calls))
                     if name == "chat.postMessage" and params.get("text") == INTERRUPTED
                     and params.get("thread_ts") == events["U1"]["ts"]), None)

    posted = await eventually(line_at, timeout=30)
    assert posted >= lapse  # the line follows the lapse
    assert posted >= max(at for at, outcome in seen if outcome == "admitted")  # and the close
    (closed_row,) = [r for r in await records(database_url) if r.id == doomed.id]
    assert closed_row.usage_source == "estimated" and closed_row.cost_micros == closed_row.reserved_micros > 0
    (kept_row,) = [r for r in await records(database_url) if r.id == kept.id]
    assert kept_row.outcome == "admitted"  # the live process's own answer goes on
    claude.chunk_delay = 0.0

    async def kept_finished() -> RequestRecord | None:
        row = next(r for r in await records(database_url) if r.id == kept.id)
        return row if row.outcome == "ok" else None

    await eventually(kept_finished, timeout=60, interval=0.5)
    assert not [c for c in slack.calls_to("chat.postMessage")
                if c.get("text") == INTERRUPTED and c.get("thread_ts") == events["U2"]["ts"]]
    assert live.process.poll() is None


async def _two_in_flight(database_url: str) -> list[RequestRecord] | None:
    rows = [r for r in await records(database_url) if r.outcome == "admitted"]
    return rows if len(rows) == 2 else None
