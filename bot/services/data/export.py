"""Audit log and request records since a moment, as plain rows for SIEM and finance (`claude-gate audit|usage
--since … --format jsonl|csv`). Read in pages by id, so an export of millions of rows holds one page in memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import AuditEntry, RequestRecord

PAGE = 1000
# Request records leave out what people wrote (prompt text) and thread references: numbers and outcomes only.
PRIVATE_RECORD_COLUMNS = frozenset({"prompt", "thread_ts"})


def record_columns() -> list[str]:
    return [c.name for c in RequestRecord.__table__.columns if c.name not in PRIVATE_RECORD_COLUMNS]


def audit_columns() -> list[str]:
    return [c.name for c in AuditEntry.__table__.columns]


async def audit_rows(sessions: async_sessionmaker[AsyncSession], since: datetime) -> AsyncIterator[dict[str, Any]]:
    async for row in _pages(sessions, AuditEntry, AuditEntry.at >= since, audit_columns()):
        yield row


async def record_rows(sessions: async_sessionmaker[AsyncSession], since: datetime) -> AsyncIterator[dict[str, Any]]:
    async for row in _pages(sessions, RequestRecord, RequestRecord.created_at >= since, record_columns()):
        yield row


async def _pages(sessions: async_sessionmaker[AsyncSession], model: Any, condition: Any,
                 columns: list[str]) -> AsyncIterator[dict[str, Any]]:
    table = model.__table__
    selected = [table.c[name] for name in columns]
    last_id = 0
    while True:
        async with sessions() as session:
            rows = (await session.execute(select(*selected).where(condition, table.c.id > last_id)
                                          .order_by(table.c.id).limit(PAGE))).all()
        for row in rows:
            yield dict(zip(columns, row, strict=True))
        if len(rows) < PAGE:
            return
        last_id = rows[-1].id


def plain_value(value: Any) -> Any:
    """A column value as JSON and CSV write it: times in ISO 8601 (UTC), the rest as is."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(…) from a key name, say)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as every CSV the product writes holds it: as ``plain_value``, dicts and lists as JSON, and text that a
    spreadsheet would take for a formula prefixed with ``'`` (shown as text, never run). Numbers stay numbers."""
    value = plain_value(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def json_line(row: dict[str, Any]) -> str:
    """One row of a JSON Lines export, with its newline."""
    return json.dumps({name: plain_value(value) for name, value in row.items()}, ensure_ascii=False) + "\n"


async def audit_jsonl(sessions: async_sessionmaker[AsyncSession], since: datetime) -> tuple[bytes, int]:
    """The audit log since ``since`` as a JSON Lines file (for `/claude-admin audit export`), and its row count."""
    lines: list[str] = []
    async for row in audit_rows(sessions, since):
        lines.append(json_line(row))
    return "".join(lines).encode(), len(lines)
