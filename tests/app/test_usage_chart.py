"""`/claude-admin usage chart [days=<n>]` (docs/admin.md): a PNG of daily cost by role and model, days on the budget
calendar (BUDGET_TZ), sent to the caller's DM with the bot; `claude-gate usage chart --out FILE` writes it."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.domain.pricing import format_usd
from bot.domain.roles import Role
from bot.services.spend.chart import HEIGHT_PX, MAX_SERIES, WIDTH_PX, daily_cost, render_png
from bot.store.models import RequestRecord
from tests.app.test_cli import run_cli
from tests.support.harness import BOT_TOKEN, Harness, eventually

ADMIN = "/claude-admin"
ZONE = "Pacific/Kiritimati"  # UTC+14: its days start at 10:00 UTC
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, the first after the signature."""
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
async def org(harness_factory) -> Harness:  # type: ignore[no-untyped-def]
    harness: Harness = await harness_factory(budget_tz=ZONE)
    harness.clock.now = datetime(2026, 11, 30, 9, 50, tzinfo=UTC)  # 23:50 on 30 Nov in Kiritimati
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN), ("UBILL", Role.BILLING),
                       ("UVIEW", Role.VIEWER), ("UUSER", Role.USER), ("U1", Role.POWER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    return harness


async def spend_over_two_days(org: Harness) -> list[RequestRecord]:
    """Three answers through Slack: two on 30 Nov in Kiritimati (opus, haiku), one 20 minutes later, on 1 Dec there
    (the same UTC day)."""
    await org.mention("U1", "--model opus a question")
    await org.mention("UUSER", "another")
    await org.settled_records(2, timeout=30)
    org.clock.advance(20 * 60)
    await org.mention("U1", "--model opus after midnight")
    records = await org.settled_records(3, timeout=30)
    assert all(r.outcome == "ok" and r.cost_micros > 0 for r in records)
    return records


@pytest.mark.parametrize("user", ["UBILL", "UADMIN", "UOWNER"])
async def test_the_chart_arrives_in_the_callers_dm(org: Harness, user: str) -> None:
    records = await spend_over_two_days(org)
    # the first chart of a process imports matplotlib: a second or more on a busy machine
    answer = await org.command(user, ADMIN, "usage chart days=7", timeout=60)
    total = format_usd(sum(r.cost_micros for r in records))
    assert answer["text"].startswith(":white_check_mark:") and "in your DM with me" in answer["text"], answer
    (upload,) = await eventually(lambda: org.slack.uploads)
    assert upload["channel"] == f"D{user}" and upload["filename"] == "claude-gate-cost-20261201-7d.png"
    assert png_size(upload["content"]) == (WIDTH_PX, HEIGHT_PX) and len(upload["content"]) > 10_000
    assert f"{total} in all" in upload["initial_comment"] and "25 Nov 2026 to 1 Dec 2026 (Pacific/Kiritimati)" \
        in upload["initial_comment"]


async def test_days_follow_budget_tz_and_series_are_role_and_model(org: Harness) -> None:
    records = await spend_over_two_days(org)
    opus = [r for r in records if r.role == "power"]
    haiku = [r for r in records if r.role == "user"]
    async with org.sessions() as session:
        chart = await daily_cost(session, now=org.clock(), days=3, tz=ZoneInfo(ZONE),
                                 model_name=org.runtime.settings.models.alias_of)
    assert [day.isoformat() for day in chart.days] == ["2026-11-29", "2026-11-30", "2026-12-01"]
    # in UTC all three fell on 30 Nov; in Kiritimati the last one is the next day
    assert chart.series == {"power · opus": [0, opus[0].cost_micros, opus[1].cost_micros],
                            "user · haiku": [0, haiku[0].cost_micros, 0]}
    assert chart.total == sum(r.cost_micros for r in records)


async def test_many_series_are_folded_into_other(org: Harness) -> None:
    at = org.clock()
    async with org.sessions.begin() as session:
        for index in range(MAX_SERIES + 3):
            session.add(RequestRecord(created_at=at, slack_user_id="U1", role="power", model=f"claude-x-{index}",
                                      cost_micros=(index + 1) * 1_000, admitted=True, outcome="ok", surface="dm"))
        session.add(RequestRecord(created_at=at, slack_user_id="U1", role="power", model="claude-x-0",
                                  cost_micros=999_000, admitted=False, outcome="refused", surface="dm"))
    async with org.sessions() as session:
        chart = await daily_cost(session, now=at, days=1, tz=ZoneInfo(ZONE))
    assert len(chart.series) == MAX_SERIES + 1 and next(iter(chart.series)) == f"power · claude-x-{MAX_SERIES + 2}"
    assert chart.series["other"] == [1_000 + 2_000 + 3_000]  # the three cheapest; the refused request costs nothing
    png = await asyncio.to_thread(render_png, chart, title="many")
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX)


@pytest.mark.parametrize("user", ["UVIEW", "UUSER", "U1"])
async def test_only_those_who_read_usage_get_a_chart(org: Harness, user: str) -> None:
    await spend_over_two_days(org)
    answer = await org.command(user, ADMIN, "usage chart")
    assert answer["text"].startswith(":no_entry:") and "view usage" in answer["text"], answer
    await asyncio.sleep(0.2)  # an upload would have started by now
    assert org.slack.uploads == []


@pytest.mark.parametrize(("text", "expected"), [
    ("usage chart days=0", "not a whole number from 1 to 366"), ("usage chart days=367", "from 1 to 366"),
    ("usage chart days=x", "not a whole number"), ("usage chart days=٣", "not a whole number"),
    ("usage chart now", "Unexpected"), ("usage chart weeks=2", "Unknown option"),
    ("usage chart days=7 days=8", "given twice"),
])
async def test_bad_days_is_one_line_and_changes_nothing(org: Harness, text: str, expected: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UBILL", ADMIN, text)
    error, usage = answer["text"].split("\n")  # the one-line error, then the usage of the subcommand
    assert error.startswith(":warning:") and expected in error
    assert usage == "Usage: `/claude-admin usage chart [days=<n>]`"
    assert org.slack.uploads == [] and await org.table_snapshot() == before


async def test_an_empty_period_is_a_line_not_an_empty_chart(org: Harness) -> None:
    old = org.clock() - timedelta(days=40)
    async with org.sessions.begin() as session:  # spend before the period, and a refusal inside it: nothing to draw
        session.add(RequestRecord(created_at=old, slack_user_id="U1", role="power", model="claude-opus-4-6",
                                  cost_micros=5_000, admitted=True, outcome="ok", surface="dm"))
        session.add(RequestRecord(created_at=org.clock(), slack_user_id="U1", role="power", model="claude-opus-4-6",
                                  cost_micros=0, admitted=False, outcome="refused", surface="dm"))
    answer = await org.command("UBILL", ADMIN, "usage chart")
    assert "No spend in the last 30 days, 1 Nov 2026 to 30 Nov 2026 (Pacific/Kiritimati)" in answer["text"]
    await asyncio.sleep(0.2)
    assert org.slack.uploads == []


async def test_usage_chart_from_the_shell_writes_the_png(harness: Harness, tmp_path: Path) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.POWER)
    await harness.mention("U1", "a question")
    (record,) = await harness.settled_records(1, timeout=30)
    env = {"DATABASE_URL": harness.runtime.settings.database_url, "BUDGET_TZ": ZONE}
    here = tmp_path / "here"  # the shell's working directory, where a chart without --out goes
    here.mkdir()
    out = here / "cost.png"
    result = await asyncio.to_thread(run_cli, "usage", "chart", "--days", "7", "--out", str(out), env=env,
                                     cwd=here)
    assert result.returncode == 0, result.stderr
    assert png_size(out.read_bytes()) == (WIDTH_PX, HEIGHT_PX)
    assert f"({format_usd(record.cost_micros)} in all) is in {out}" in result.stdout
    assert f"wrote {out}" in result.stderr and "Slack" not in result.stderr
    for words, expected in ((("--days", "0"), "not a whole number from 1 to 366"),
                            (("--days", "-3"), "not a whole number"), (("--csv",), "takes --days and --out only")):
        bad = await asyncio.to_thread(run_cli, "usage", "chart", *words, env=env, cwd=here)
        assert bad.returncode == 2 and expected in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert names(here) == ["cost.png"]
    with_slack = env | {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": harness.slack.api_url}
    default_name = await asyncio.to_thread(run_cli, "usage", "chart", env=with_slack, cwd=here)
    assert default_name.returncode == 0, default_name.stderr
    assert harness.slack.uploads == []  # the shell's file is written here, never sent to Slack
    (written,) = [name for name in names(here) if name != "cost.png"]
    assert written.startswith("claude-gate-cost-") and written.endswith("-30d.png")


def test_start_up_and_the_command_line_do_not_import_matplotlib() -> None:
    probe = "import sys, bot.app, bot.cli; bot.cli.program._parser(); print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
