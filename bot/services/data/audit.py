"""The audit trail: who did what to whom, when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.marks import unmarked
from bot.domain.mentions import mention_ids
from bot.store.models import AuditEntry


def add_audit(session: AsyncSession, *, at: datetime, actor: str, action: str, target: str | None = None,
              **detail: Any) -> AuditEntry:
    """Add an audit row to the caller's transaction, so the change and its record commit together. Words in the
    details (a refusal's reason) are stored plain: no marks (bot/domain/marks.py), mentions as bare IDs."""
    stored = {name: mention_ids(unmarked(value)) if isinstance(value, str) else value for name, value in detail.items()}
    entry = AuditEntry(at=at, actor=actor, action=action, target=target, detail=stored or None)
    session.add(entry)
    return entry


async def recent_audit(session: AsyncSession, limit: int = 20) -> list[AuditEntry]:
    rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return list(rows)
