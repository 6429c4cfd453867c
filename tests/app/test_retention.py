"""Retention (docs/channels-and-data.md):
old words and thread references go, numbers stay, batched so admissions go on; the daily
job on the scheduler leader; `claude-gate purge`. On SQLite, and on PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.roles import Role
from bot.scheduler import JobScheduler
from bot.services.data.retention import PURGE_ACTION, PurgeResult, purge_expired
from bot.store.models import AccessRequest, AnsweredThread, AuditEntry, RequestRecord, ViewingContext
from tests.app.test_cli import run_cli
from tests.support.harness import Harness, eventually

DAY = 24 * 3600


async def ask(harness: Harness, user: str, words: str, count: int, *, feedback: str | None = None) -> None:
    await harness.mention(user, words)
    (*_, record) = await harness.settled_records(count)
    if feedback:
        async with harness.sessions.begin() as session:
            await session.execute(update(RequestRecord).where(RequestRecord.id == record.id).values(feedback=feedback))


async def test_purge_removes_old_words_and_thread_references_and_keeps_the_numbers(harness_factory) -> None:
    harness = await harness_factory(log_prompts=True, retention_days=30, audit_retention_days=60)
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    start = harness.clock()
    await ask(harness, "U1", "an old question", 1, feedback="up")  # 100 days ago, seen from the end
    async with harness.sessions.begin() as session:
        session.add(AccessRequest(slack_user_id="U1", role="power", reason="old words", status="denied",
                                  created_at=harness.clock()))
        session.add(ViewingContext(slack_user_id="U1", channel_id="C0100", updated_at=harness.clock()))
    harness.clock.advance(75 * DAY)
    await ask(harness, "U1", "a question of last month", 2)  # 25 days before the purge: kept
    harness.clock.advance(25 * DAY)
    await ask(harness, "U1", "a question of today", 3)
    before = await harness.records()

    result = await purge_expired(harness.runtime.engine, harness.clock, harness.runtime.settings, actor="cli")

    assert (result.prompts, result.thread_references) == (1, 1)
    assert result.audit_rows >= 1  # the grant of 100 days ago
    old, recent, today = await harness.records()
    assert (old.prompt, old.thread_ts) == (None, None)
    assert (old.input_tokens, old.output_tokens, old.estimated_cost, old.feedback, old.outcome, old.model) == (
        before[0].input_tokens, before[0].output_tokens, before[0].estimated_cost, "up", "ok", before[0].model)
    assert recent.prompt == "a question of last month" and recent.thread_ts is not None
    assert today.prompt == "a question of today"
    audit = await harness.audit()
    assert all(entry.at >= start + timedelta(days=40) for entry in audit)  # the old grant's row went
    purge = audit[-1]
    assert (purge.actor, purge.action) == ("cli", PURGE_ACTION)
    assert purge.detail["prompts"] == 1 and purge.detail["thread_references"] == 1
    assert purge.detail["retention_days"] == 30 and purge.detail["audit_rows"] == result.audit_rows

    assert result.extra == {"access_request_reasons": 1, "viewing_contexts": 1, "answered_threads": 1}
    async with harness.sessions() as session:
        assert await session.scalar(select(AccessRequest.reason)) == ""
        assert list(await session.scalars(select(AnsweredThread.thread_ts))) == [recent.thread_ts, today.thread_ts]
    again = await purge_expired(harness.runtime.engine, harness.clock, harness.runtime.settings, actor="cli")
    assert set(again.counts.values()) == {0}


async def test_without_audit_retention_the_audit_log_is_kept(harness_factory) -> None:
    harness = await harness_factory()
    await harness.grant("U1", Role.USER)
    harness.clock.advance(400 * DAY)
    result = await purge_expired(harness.runtime.engine, harness.clock, harness.runtime.settings, actor="cli")
    assert result.audit_cutoff is None and result.audit_rows == 0
    assert [entry.action for entry in await harness.audit()] == ["keys.add", "grant", PURGE_ACTION]


async def bulk_old_records(engine: AsyncEngine, count: int, created: object) -> None:
    """``count`` request records with prompt text, written by the database itself (fast on both dialects)."""
    if engine.dialect.name == "postgresql":
        numbers = "SELECT generate_series(1, :count) AS i"
    else:
        numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) SELECT i FROM n"
    statement = text(
        "INSERT INTO request_records (created_at, slack_user_id, role, model, input_tokens, output_tokens, "
        "cost_micros, admitted, outcome, surface, channel_id, thread_ts, prompt) "
        "SELECT :created, 'UOLD', 'user', 'claude-haiku', 10, 20, 1000, :admitted, 'ok', 'mention', 'C0001', "
        f"'1700000000.000100', 'an old question' FROM ({numbers}) AS numbers"
    ).bindparams(bindparam("created", type_=RequestRecord.created_at.type))
    async with engine.begin() as connection:
        await connection.execute(statement, {"count": count, "created": created, "admitted": True})


async def test_200000_rows_purge_in_batches_while_an_admission_goes_through(harness_factory) -> None:
    harness = await harness_factory(log_prompts=True)
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await bulk_old_records(harness.runtime.engine, 200_000, harness.clock() - timedelta(days=120))
    admitted_during: list[int] = []

    async def between_batches(result: PurgeResult) -> None:
        if result.batches == 1:  # the purge is under way and holds no lock now: a request is admitted and answered
            await harness.mention("U1", "a question during the purge")

            async def answered() -> int | None:
                async with harness.sessions() as session:
                    return await session.scalar(select(RequestRecord.id).where(
                        RequestRecord.slack_user_id == "U1", RequestRecord.outcome == "ok"))

            admitted_during.append(await eventually(answered, timeout=20))

    result = await purge_expired(harness.runtime.engine, harness.clock, harness.runtime.settings, actor="scheduler",
                                 batch_size=20_000, on_batch=between_batches)

    assert (result.prompts, result.thread_references) == (200_000, 200_000) and result.batches == 10
    assert admitted_during
    async with harness.sessions() as session:
        left = await session.scalar(select(func.count()).where(RequestRecord.prompt.is_not(None)))
        tokens = await session.scalar(select(func.sum(RequestRecord.output_tokens))
                                      .where(RequestRecord.slack_user_id == "UOLD"))
        during = await session.get(RequestRecord, admitted_during[0])
    assert left == 1 and tokens == 20 * 200_000  # the numbers stay
    assert during is not None and during.outcome == "ok" and during.prompt == "a question during the purge"


async def test_the_daily_job_runs_on_the_leader_once_a_day(harness_factory) -> None:
    harness = await harness_factory(log_prompts=True)
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    await ask(harness, "U1", "an old question", 1)
    harness.clock.advance(100 * DAY)
    leader = JobScheduler(db=harness.runtime.db, clock=harness.clock, settings=harness.runtime.settings,
                          client=harness.runtime.client, holder="a")
    follower = JobScheduler(db=harness.runtime.db, clock=harness.clock, settings=harness.runtime.settings,
                            client=harness.runtime.client, holder="b")
    try:
        assert await leader.keep_leadership() and not await follower.keep_leadership()
        assert await follower.daily_retention() is None
        first = await leader.daily_retention()
        assert first is not None and first.prompts == 1
        harness.clock.advance(6 * 3600)
        assert await leader.daily_retention() is None  # once a day
        harness.clock.advance(DAY)
        assert await leader.daily_retention() is not None
    finally:
        await leader.shutdown()
        await follower.shutdown()
    purges = [entry for entry in await harness.audit() if entry.action == PURGE_ACTION]
    assert [entry.actor for entry in purges] == ["scheduler", "scheduler"]


def test_shell_purge_now_prints_the_counts_and_audits(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "RETENTION_DAYS": "7"}
    shown = run_cli("purge", env=env, cwd=tmp_path)
    assert shown.returncode == 0 and "after 7 days" in shown.stdout and "never" in shown.stdout
    done = run_cli("purge", "--now", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "0 prompts, 0 thread references, 0 audit rows" in done.stdout

    from sqlalchemy import create_engine

    from bot.store.db import sync_url

    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEntry.actor, AuditEntry.action)).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("cli", PURGE_ACTION)]
