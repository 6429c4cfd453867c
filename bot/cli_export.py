"""`claude-gate audit --since <date> --format jsonl|csv` and `claude-gate usage --since <date> --format jsonl|csv`:
the audit log and the request records for SIEM and finance, to standard output or `--out FILE`."""

from __future__ import annotations

import csv
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bot.config import Settings
from bot.domain.errors import CliError
from bot.services.data.export import csv_cell, json_line

FORMATS = ("jsonl", "csv")


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
    from bot.cli import with_database

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
        print(f"wrote {count:,} row(s) to {out}", file=sys.stderr)
    return 0
