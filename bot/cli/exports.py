"""`claude-gate audit --since <date> --format jsonl|csv` and `claude-gate usage --since <date> --format jsonl|csv`:
the audit log and the request records for SIEM and finance, to standard output or `--out FILE`; and `claude-gate
usage --csv [--days n]`, one CSV row per user. Without these flags, `usage` and `audit` are the admin verbs
(bot/cli/admin.py)."""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from bot.cli.admin import cmd_admin
from bot.cli.base import with_database
from bot.config import Settings
from bot.domain.commands import MAX_INT, whole_number
from bot.domain.errors import CliError
from bot.domain.words import counted
from bot.services.data.export import csv_cell, json_line

FORMATS = ("jsonl", "csv")
EVERYTHING_DAYS = 100_000  # more days than any record is old (and a date still in range)
USAGE_COLUMNS = ["slack_user_id", "requests", "refused", "errors", "input_tokens", "output_tokens",
                 "estimated_cost_usd", "thumbs_up", "thumbs_down", "cache_write_tokens", "cache_read_tokens"]


def add_export_flags(commands: dict[str, argparse.ArgumentParser]) -> None:
    """--since and --format on `usage` and `audit` (and --csv on `usage`): an export instead of the report."""
    for word, what in (("usage", "every request record (numbers and outcomes, no prompt text)"),
                       ("audit", "every audit entry")):
        command = commands[word]
        command.add_argument("--since", metavar="DATE", help=f"export {what} since DATE (YYYY-MM-DD or ISO 8601)")
        command.add_argument("--format", choices=FORMATS, help="export format (default jsonl)")
        command.set_defaults(handler=cmd_report_or_export)
    commands["usage"].add_argument("--csv", action="store_true", help="one CSV row per user instead of the summary")


def cmd_report_or_export(settings: Settings, args: argparse.Namespace) -> int:
    csv_rows = getattr(args, "csv", False)
    if not (args.since or args.format or csv_rows):
        return cmd_admin(settings, args)
    if args.words[:1] == ["chart"]:
        raise CliError("usage chart takes --days and --out only")
    if args.words or args.json:
        raise CliError(f"{args.admin_word} --since, --format and --csv take no other words and no --json: "
                       f"they export every row")
    if csv_rows:
        if args.since or args.format:
            raise CliError("usage --csv is a summary per user over --days: --since and --format export the records")
        from bot.services.spend.commands import DEFAULT_USAGE_DAYS

        days = DEFAULT_USAGE_DAYS if args.option_days is None else whole_number(args.option_days, 1, MAX_INT)
        if days is None:
            raise CliError(f"--days {args.option_days[:20]!r}: give a whole number of days, at least 1")
        return usage_csv(settings, min(days, EVERYTHING_DAYS))
    from bot.services.data.export import audit_columns, audit_rows, record_columns, record_rows

    if args.admin_word == "audit":
        return export(settings, audit_rows, audit_columns(), since=args.since, fmt=args.format, out=args.out)
    return export(settings, record_rows, record_columns(), since=args.since, fmt=args.format, out=args.out)


def usage_csv(settings: Settings, days: int) -> int:
    from bot.services.spend.usage import usage_by_user
    from bot.store.clock import system_clock

    async def work(db: Any) -> list[tuple[Any, ...]]:
        async with db.reads() as session:  # serve keeps writing meanwhile (SQLite)
            return await usage_by_user(session, since=system_clock() - timedelta(days=days))

    rows = with_database(settings, work)
    writer = csv.writer(sys.stdout)
    writer.writerow(USAGE_COLUMNS)
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return 0


def parse_since(text: str) -> datetime:
    """`2026-11-01` (midnight UTC) or an ISO 8601 time (UTC when it names no offset)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"--since {text!r} is not a date: give YYYY-MM-DD or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def export(settings: Settings, rows_of: Callable[[Any, datetime], AsyncIterator[dict[str, Any]]],
           columns: list[str], *, since: str | None, fmt: str | None, out: str | None) -> int:
    """Write every row since ``since`` (default: everything) as JSON Lines or CSV."""
    fmt = fmt or "jsonl"
    if fmt not in FORMATS:
        raise CliError(f"--format {fmt!r}: use jsonl or csv")
    moment = parse_since(since) if since else datetime(1970, 1, 1, tzinfo=UTC)

    async def work(db: Any) -> int:
        stream: IO[str] = Path(out).open("w", newline="") if out else sys.stdout  # noqa: ASYNC230 (the shell's own loop)
        try:
            writer = csv.DictWriter(stream, fieldnames=columns) if fmt == "csv" else None
            if writer is not None:
                writer.writeheader()
            count = 0
            async for row in rows_of(db.reads, moment):  # serve keeps writing meanwhile (SQLite)
                if writer is not None:
                    writer.writerow({name: csv_cell(value) for name, value in row.items()})
                else:
                    stream.write(json_line(row))
                count += 1
            return count
        finally:
            if out:
                stream.close()

    count = with_database(settings, work)
    if out:
        print(f"wrote {counted(count, 'row')} to {out}", file=sys.stderr)
    return 0
