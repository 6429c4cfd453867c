"""Every `/claude-admin` subcommand has a `claude-gate` form: the same words, the same grammar and dispatcher, the
same answer (rendered for a terminal), acting as owner and audited as `cli`."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import _parser
from bot.domain.commands import ADMIN, subcommands_of
from bot.domain.roles import Role
from bot.store.models import AuditEntry, GroupRoleMapping
from bot.terminal import blocks_text
from tests.conftest import BOT_TOKEN, Harness
from tests.test_cli import run_cli


def same_text(text: str) -> str:
    """Compare answers without the alignment spaces and the command's spelling (/claude-admin or claude-gate)."""
    text = text.replace("/claude-admin ", "claude-gate ")
    return "\n".join(re.sub(r"\s+", " ", line).strip() for line in text.strip().splitlines())


async def cli(harness: Harness, tmp_path: Path, *words: str, slack: bool = True):
    env = {"DATABASE_URL": harness.runtime.settings.database_url}
    if slack:
        env |= {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": harness.slack.api_url}
    return await asyncio.to_thread(run_cli, *words, env=env, cwd=tmp_path)


async def slash(harness: Harness, text: str) -> str:
    answer = await harness.command("UOWNER", ADMIN, text)
    return blocks_text(answer["blocks"])


@pytest.fixture
async def owner_harness(harness: Harness) -> Harness:
    for user in ("UOWNER", "UANA", "UBEN"):
        harness.slack.add_user(user, email=f"{user.lower()}@example.com")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.grant("UANA", Role.POWER)
    await harness.grant("UBEN", Role.USER)
    harness.slack.add_usergroup("S0ENG", "eng", ["UANA", "UBEN"])
    return harness


def test_every_first_word_of_the_grammar_is_a_command() -> None:
    commands = set(_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {s.words[0] for s in subcommands_of(ADMIN)} <= commands


OWN_SHELL_FORMS = {"users power": ("UANA", "power"), "policy user": ("haiku", "512", "10"),
                   "keys": ("default", "sk-ant-api03-…AbCd")}


@pytest.mark.parametrize("words", ["whois UANA", "groups", "reminders", "help", "users power", "policy user",
                                   "keys"])
async def test_a_reading_command_answers_the_same_in_both(owner_harness: Harness, tmp_path: Path,
                                                          words: str) -> None:
    in_slack = await slash(owner_harness, words)
    in_shell = await cli(owner_harness, tmp_path, *words.split())
    assert in_shell.returncode == 0, in_shell.stderr
    facts = OWN_SHELL_FORMS.get(words)
    if facts:  # commands with an older shell form of their own (same service): the same facts
        for fact in facts:
            assert fact in in_slack and fact in in_shell.stdout, fact
    else:
        assert same_text(in_shell.stdout) == same_text(in_slack)
    assert not re.search(r":[a-z_+-]+:|\*\w|`", in_shell.stdout)  # no Slack markup in a terminal


async def test_groups_map_and_unmap_from_the_shell_as_in_slack(owner_harness: Harness, tmp_path: Path) -> None:
    mapped = await cli(owner_harness, tmp_path, "groups", "map", "@eng", "power")
    assert mapped.returncode == 0, mapped.stderr
    async with owner_harness.sessions() as session:
        mapping = (await session.scalars(select(GroupRoleMapping))).one()
        assert (mapping.usergroup_id, mapping.role) == ("S0ENG", "power")
    assert same_text((await cli(owner_harness, tmp_path, "groups")).stdout) == same_text(
        await slash(owner_harness, "groups"))
    unmapped = await cli(owner_harness, tmp_path, "groups", "unmap", "S0ENG")
    assert unmapped.returncode == 0, unmapped.stderr
    remapped_in_slack = await slash(owner_harness, "groups map @eng power")
    assert same_text(remapped_in_slack) == same_text(mapped.stdout)
    audit = [(e.actor, e.action) for e in await owner_harness.audit()]
    assert ("cli", "groups.map") in audit and ("cli", "groups.unmap") in audit and ("UOWNER", "groups.map") in audit


async def test_offboard_from_the_shell_as_in_slack(owner_harness: Harness, tmp_path: Path) -> None:
    await owner_harness.grant("UBEN", Role.POWER)  # the twins differ only in who
    in_shell = await cli(owner_harness, tmp_path, "offboard", "UANA")
    assert in_shell.returncode == 0, in_shell.stderr
    in_slack = await slash(owner_harness, "offboard UBEN")
    assert same_text(in_shell.stdout.replace("UANA", "UBEN")) == same_text(in_slack)
    audit = [(e.actor, e.action, e.target) for e in await owner_harness.audit()]
    assert ("cli", "offboard", "UANA") in audit and ("UOWNER", "offboard", "UBEN") in audit
    async with owner_harness.sessions() as session:
        assert not (await session.scalars(select(AuditEntry).where(AuditEntry.actor == "shell"))).all()


async def test_commands_that_need_slack_say_so(owner_harness: Harness, tmp_path: Path) -> None:
    for words in (("offboard", "UANA"), ("groups", "map", "@eng", "power"), ("reminders", "run")):
        result = await cli(owner_harness, tmp_path, *words, slack=False)
        assert result.returncode == 2 and "needs Slack" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
        assert result.stderr.count("\n") == 1
    async with owner_harness.sessions() as session:
        assert not (await session.scalars(select(GroupRoleMapping))).all()
    assert (await cli(owner_harness, tmp_path, "whois", "UANA", slack=False)).returncode == 0  # reading needs none


async def test_bad_words_get_the_usage_and_change_nothing(owner_harness: Harness, tmp_path: Path) -> None:
    before = await owner_harness.table_snapshot()
    result = await cli(owner_harness, tmp_path, "whois", "nobody")
    assert result.returncode == 2 and "Usage: claude-gate whois @user" in result.stderr
    assert "is not a Slack user" in result.stderr and result.stdout == ""
    assert await owner_harness.table_snapshot() == before


async def test_json_and_out(owner_harness: Harness, tmp_path: Path) -> None:
    as_json = json.loads((await cli(owner_harness, tmp_path, "whois", "UANA", "--json")).stdout)
    assert as_json["kind"] == "Reply" and as_json["title"] == "UANA (uana)"
    assert ["Role", "power (from an explicit grant)"] in as_json["fields"]
    out = tmp_path / "reminders.txt"
    written = await cli(owner_harness, tmp_path, "reminders", "--out", str(out))
    assert written.returncode == 0 and written.stdout == "" and "wrote" in written.stderr
    assert same_text(out.read_text()) == same_text(await slash(owner_harness, "reminders"))


async def test_audit_and_usage_export_since_a_date(harness: Harness, tmp_path: Path) -> None:
    """`claude-gate audit|usage --since <date> --format jsonl|csv [--out FILE]`: every row since then, for SIEM and
    finance; request records carry numbers and outcomes, never prompt text."""
    from datetime import UTC, datetime

    from bot.services.data.audit import add_audit
    from bot.store.models import RequestRecord

    old, new = datetime(2026, 10, 30, 23, 0, tzinfo=UTC), datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    async with harness.sessions.begin() as session:
        add_audit(session, at=old, actor="UOLD", action="grant", target="U1", role="user")
        add_audit(session, at=new, actor="UNEW", action="policy.set", target="user", field="max_tokens")
        for at, user in ((old, "UOLD"), (new, "UNEW")):
            session.add(RequestRecord(created_at=at, slack_user_id=user, role="power", model="claude-x",
                                      input_tokens=10, output_tokens=20, cost_micros=500_000, admitted=True,
                                      outcome="ok", surface="dm", prompt="a private question", thread_ts="1.2"))
    audit = await cli(harness, tmp_path, "audit", "--since", "2026-11-01", slack=False)
    assert audit.returncode == 0, audit.stderr
    rows = [json.loads(line) for line in audit.stdout.splitlines()]  # and the app's own start-up rows, of today
    ours = [r for r in rows if r["actor"] in ("UOLD", "UNEW")]
    assert [(r["actor"], r["action"], r["detail"]) for r in ours] == [("UNEW", "policy.set", {"field": "max_tokens"})]
    assert ours[0]["at"].startswith("2026-11-02T08:30:00")
    out = tmp_path / "usage.csv"
    usage = await cli(harness, tmp_path, "usage", "--since", "2026-10-30T22:00:00+00:00", "--format", "csv",
                      "--out", str(out), slack=False)
    assert usage.returncode == 0 and usage.stdout == "" and "wrote 2 row(s)" in usage.stderr
    import csv

    records = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["slack_user_id"] for r in records] == ["UOLD", "UNEW"] and records[0]["output_tokens"] == "20"
    assert "prompt" not in records[0] and "a private question" not in out.read_text()
    bad = await cli(harness, tmp_path, "audit", "--since", "last week", slack=False)
    assert bad.returncode == 2 and bad.stderr.startswith("claude-gate: --since 'last week' is not a date")
