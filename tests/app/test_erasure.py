"""Erasure (docs/channels-and-data.md):
`/claude-admin forget <user>` and `claude-gate forget U…` remove a person's stored words and
preferences, keep their numbers, are audited, and need an owner for admins and owners."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.domain.roles import Role
from bot.store.models import (
    AccessRequest,
    AnsweredThread,
    AuditEntry,
    RequestRecord,
    UserPreference,
    ViewingContext,
)
from tests.app.test_cli import run_cli
from tests.support.harness import Harness

ADMIN = "/claude-admin"


async def stored_words(harness: Harness, user: str) -> Harness:
    """Two answered questions (one rated 👍; the app remembers both threads), a default model, an access request,
    a viewed channel."""
    count = len(await harness.records())
    for question in ("what is our refund policy?", "and for enterprise customers?"):
        await harness.mention(user, question)
        count += 1
        await harness.settled_records(count)
    async with harness.sessions.begin() as session:
        first = await session.scalar(select(RequestRecord.id).where(RequestRecord.slack_user_id == user)
                                     .order_by(RequestRecord.id))
        await session.execute(update(RequestRecord).where(RequestRecord.id == first).values(feedback="up"))
        session.add(UserPreference(slack_user_id=user, preferred_model="haiku", updated_at=harness.clock()))
        session.add(AccessRequest(slack_user_id=user, role="power", reason="I review our contracts with Claude",
                                  status="denied", created_at=harness.clock()))
        session.add(ViewingContext(slack_user_id=user, channel_id="C0100", updated_at=harness.clock()))
    return harness


@pytest.fixture
async def org(harness_factory) -> Harness:
    harness = await harness_factory(log_prompts=True)
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("UADMIN2", Role.ADMIN),
                       ("UUSER", Role.USER), ("UOTHER", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    return harness


async def numbers(harness: Harness, user: str) -> list[tuple[object, ...]]:
    return [(r.input_tokens, r.output_tokens, r.estimated_cost, r.feedback, r.outcome, r.model, r.role)
            for r in await harness.records() if r.slack_user_id == user]


async def test_forget_erases_words_and_keeps_numbers(org: Harness) -> None:
    await stored_words(org, "UUSER")
    await stored_words(org, "UOTHER")
    kept = await numbers(org, "UUSER")

    answer = await org.command("UADMIN", ADMIN, "forget <@UUSER|uuser>")
    assert "Erased what Claude Gate stored of <@UUSER>'s words: 2 prompts, 1 access request reason," in answer["text"]

    assert await numbers(org, "UUSER") == kept  # counts, tokens, cost and the 👍 stay
    async with org.sessions() as session:
        records = await session.scalars(select(RequestRecord).order_by(RequestRecord.id))
        prompts = {r.slack_user_id: r.prompt for r in records}  # each person's last question
        reasons = {r.slack_user_id: r.reason for r in await session.scalars(select(AccessRequest))}
        preferences = set(await session.scalars(select(UserPreference.slack_user_id)))
        contexts = set(await session.scalars(select(ViewingContext.slack_user_id)))
        threads = set(await session.scalars(select(AnsweredThread.slack_user_id)))
    assert prompts["UUSER"] is None and prompts["UOTHER"] == "and for enterprise customers?"
    assert reasons == {"UUSER": "", "UOTHER": "I review our contracts with Claude"}
    assert preferences == contexts == threads == {"UOTHER"}
    (entry,) = [a for a in await org.audit() if a.action == "forget"]
    assert (entry.actor, entry.target) == ("UADMIN", "UUSER")
    assert entry.detail == {"prompts": 2, "access_request_reasons": 1, "preferences": 1, "viewing_contexts": 1,
                            "answered_threads": 2, "schedules": 0}


async def test_admins_and_owners_are_forgotten_by_owners_only(org: Harness) -> None:
    await stored_words(org, "UADMIN2")
    before = await org.table_snapshot()
    denied = await org.command("UADMIN", ADMIN, "forget <@UADMIN2>")
    assert denied["text"].startswith(":no_entry:") and "Only an owner" in denied["text"]
    after = await org.table_snapshot()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items()
                                                                    if k != "audit_log"}
    assert "Erased" in (await org.command("UOWNER", ADMIN, "forget <@UADMIN2>"))["text"]


@pytest.mark.parametrize("user", ["UUSER"])
async def test_people_without_admin_rights_cannot_forget(org: Harness, user: str) -> None:
    answer = await org.command(user, ADMIN, "forget <@UOTHER>")
    assert answer["text"].startswith(":no_entry:")


@pytest.mark.parametrize(("text", "expected"), [("forget", "Missing user"), ("forget ana", "is not a Slack user"),
                                                ("forget <@UUSER> now", "Unexpected")])
async def test_bad_forget_input_is_one_line_and_changes_nothing(org: Harness, text: str, expected: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UADMIN", ADMIN, text)
    assert expected in answer["text"] and "Usage:" in answer["text"] + str(answer.get("blocks"))
    assert await org.table_snapshot() == before


def test_shell_forget_is_audited_as_cli(database_url: str, tmp_path: Path) -> None:
    done = run_cli("forget", "U0FORGET", env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "U0FORGET" in done.stdout and "0 prompts" in done.stdout

    from sqlalchemy import create_engine

    from bot.store.db import sync_url

    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)
                                  .where(AuditEntry.action == "forget")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("cli", "forget", "U0FORGET")]
