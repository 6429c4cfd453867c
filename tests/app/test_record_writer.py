"""The one record writer: answers ending together and refusals held through an outage share a commit, a database
hiccup is retried, shutting down writes what is queued, and past the memory bound refusals are counted in one
aggregate record that usage reports count."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from tenacity import wait_fixed

from bot.domain.decisions import Admission, Outcome
from bot.domain.requests import ChatRequest, Requester
from bot.domain.roles import Role
from bot.services.conversation.records import AGGREGATE_USER, RecordWriter
from tests.support.harness import Harness, eventually


async def admitted(harness: Harness, count: int) -> list[int]:
    for i in range(count):
        harness.slack.add_user(f"UF{i:03d}")
        await harness.grant(f"UF{i:03d}", Role.USER)
    ids = []
    for i in range(count):
        decision = await harness.runtime.chat.gate.admit_request(
            ChatRequest(requester=Requester(f"UF{i:03d}", team_id="T0001"), text="q"))
        assert isinstance(decision, Admission)
        ids.append(decision.record_id)
    return ids


def counting_commits(harness: Harness) -> list[int]:
    commits: list[int] = []
    event.listen(harness.runtime.engine.sync_engine, "commit", lambda _connection: commits.append(1))
    return commits


async def test_answers_ending_together_share_a_commit(harness: Harness) -> None:
    ids = await admitted(harness, 40)
    commits = counting_commits(harness)
    writer = harness.runtime.records
    await asyncio.gather(*(writer.finish(record_id=record_id, model="claude-haiku-4-5", outcome=Outcome.OK,
                                           input_tokens=10 + n, output_tokens=5, latency_ms=n)
                           for n, record_id in enumerate(ids)))
    records = await harness.records()
    assert [(r.outcome, r.input_tokens, r.latency_ms) for r in records] == [("ok", 10 + n, n) for n in range(40)]
    assert all(r.estimated_cost > 0 for r in records)
    assert 1 <= len(commits) <= 3  # 40 records, not 40 transactions


@pytest.mark.parametrize("failure", [OperationalError("UPDATE request_records", {}, Exception("disk I/O error")),
                                     ValueError("a bug, not the database")], ids=["database", "bug"])
async def test_a_failed_write_is_retried_and_nothing_is_lost(harness: Harness, caplog, failure: Exception) -> None:
    (record_id,) = await admitted(harness, 1)
    failures = [failure]

    def fail_once(*_args: object) -> None:
        if failures:
            raise failures.pop()

    event.listen(harness.runtime.engine.sync_engine, "before_cursor_execute", fail_once)
    with caplog.at_level(logging.WARNING, logger="bot.services.conversation.records"):
        await harness.runtime.records.finish(record_id=record_id, model="claude-haiku-4-5", outcome=Outcome.ERROR,
                                               input_tokens=3, output_tokens=0, latency_ms=7, error_type="server")
    (record,) = await harness.records()
    assert (record.outcome, record.error_type, record.latency_ms) == ("error", "server", 7)
    assert f"could not write 1 request record(s) (attempt 1): {type(failure).__name__}" in caplog.text


async def test_closing_writes_the_queued_records(harness: Harness) -> None:
    ids = await admitted(harness, 3)
    writer = RecordWriter(harness.runtime.engine)
    pending = [asyncio.create_task(writer.finish(record_id=record_id, model="claude-haiku-4-5",
                                                   outcome=Outcome.OK, input_tokens=1, output_tokens=1,
                                                   latency_ms=1)) for record_id in ids]
    await asyncio.sleep(0)  # queued, not yet written
    await writer.close()
    assert [r.outcome for r in await harness.records()] == ["ok", "ok", "ok"]
    await asyncio.gather(*pending)


@pytest.mark.parametrize("outcome", [Outcome.OK, Outcome.ERROR])
async def test_a_cancelled_answer_still_finishes_its_record(harness: Harness, outcome: Outcome) -> None:
    (record_id,) = await admitted(harness, 1)
    waiting = asyncio.create_task(harness.runtime.records.finish(
        record_id=record_id, model="claude-haiku-4-5", outcome=outcome, input_tokens=1, output_tokens=1,
        latency_ms=1))
    await asyncio.sleep(0)
    waiting.cancel()
    await harness.runtime.records.close()
    (record,) = await harness.records()
    assert record.outcome == outcome.value


async def test_held_refusals_and_finishes_share_a_commit(harness: Harness) -> None:
    (record_id,) = await admitted(harness, 1)
    commits = counting_commits(harness)
    writer = harness.runtime.records
    refusal = harness.runtime.gate.refuse_unreachable(ChatRequest(requester=Requester("UF000", team_id="T0001"),
                                                                  text="held"))
    await writer.finish(record_id=record_id, model="claude-haiku-4-5", outcome=Outcome.OK, input_tokens=4,
                        output_tokens=2, latency_ms=3)
    records = await harness.records()
    assert [(r.outcome, r.refusal_reason, r.requests) for r in records] == [
        ("ok", None, 1), ("refused", refusal.reason.value, 1)]
    assert len(commits) == 1


async def test_past_the_bound_refusals_are_counted_in_one_aggregate_record(harness: Harness) -> None:
    """Nothing is dropped while the process lives: past the memory bound a refusal is counted, not held, and
    `usage` counts every one of them once the database is back."""
    for user, role in (("U1", Role.POWER), ("UADMIN", Role.ADMIN)):
        harness.slack.add_user(user)
        await harness.grant(user, Role.ADMIN if user == "UADMIN" else role)
    writer = harness.runtime.records
    writer.max_backlog, writer.wait = 3, wait_fixed(0.01)
    down = [True]

    def unreachable(*_args: object) -> None:
        if down[0]:
            raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(harness.runtime.engine.sync_engine, "before_cursor_execute", unreachable)
    for i in range(8):
        await harness.mention("U1", f"during {i}")
    await eventually(lambda: len(harness.ephemerals_for("U1")) == 8, timeout=15)
    assert all("database is unreachable" in e["text"] for e in harness.ephemerals_for("U1"))
    assert writer.backlog == 3 and harness.anthropic.message_requests() == []
    down[0] = False

    await eventually(lambda: writer.backlog == 0, timeout=15)
    records = await harness.records()
    assert [(r.slack_user_id, r.refusal_reason, r.requests) for r in records] == [
        ("U1", "database_unavailable", 1)] * 3 + [(AGGREGATE_USER, "database_unavailable", 5)]
    usage = await harness.command("UADMIN", "/claude-admin", "usage")
    assert "*8* refused" in str(usage) and "database unavailable 8" in str(usage)
