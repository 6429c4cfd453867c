"""Audit log and request records since a moment, as plain rows for SIEM and finance (`claude-gate audit|usage
--since … --format jsonl|csv`). Read in pages by id, so an export of millions of rows holds one page in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
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
