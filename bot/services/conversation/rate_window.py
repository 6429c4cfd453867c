"""The requests-per-minute limit: an exact rolling window over the asker's admitted requests of the last 60 s."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from bot.domain.decisions import Refusal, RefusalReason
from bot.domain.marks import strong
from bot.domain.policy import RPM_WINDOW_SECONDS, RolePolicy
from bot.services.spend.counters import ADVISORY_LOCK
from bot.store.db import Conn, dialect_of
from bot.store.models import RequestRecord


@dataclass(frozen=True)
class RateWindow:
    used: int  # admitted requests in the last 60 s
    limit: int
    free_in: int | None  # seconds until a slot frees when the limit is reached, else None

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


RECENT_ADMISSIONS = (
    select(RequestRecord.created_at)
    .where(RequestRecord.slack_user_id == bindparam("user_id"), RequestRecord.admitted.is_(True),
           RequestRecord.created_at > bindparam("since", type_=RequestRecord.created_at.type))
    .order_by(RequestRecord.created_at.desc())
    .limit(bindparam("limit"))
)


async def rate_window(conn: Conn, user_id: str, limit: int, now: datetime) -> RateWindow:
    """Exact rolling window: the limit-th most recent admission in the window frees a slot 60 s after it."""
    if limit <= 0:
        return RateWindow(0, 0, None)
    since = now - timedelta(seconds=RPM_WINDOW_SECONDS)
    recent = list(await conn.scalars(RECENT_ADMISSIONS, {"user_id": user_id, "since": since, "limit": limit}))
    if len(recent) < limit:
        return RateWindow(len(recent), limit, None)
    blocking = recent[-1]
    wait = max(1, math.ceil((blocking + timedelta(seconds=RPM_WINDOW_SECONDS) - now).total_seconds()))
    return RateWindow(len(recent), limit, wait)


async def lock_user(conn: Conn, user_id: str) -> None:
    """Serialise one user's admissions across processes (SQLite: BEGIN IMMEDIATE already did)."""
    if dialect_of(conn) == "postgresql":
        await conn.execute(ADVISORY_LOCK, {"key": f"rpm:{user_id}"})


async def rpm_refusal(conn: Conn, user_id: str, policy: RolePolicy, now: datetime) -> Refusal | None:
    """The refusal of a request over the role's requests per minute, or None while a slot is free."""
    window = await rate_window(conn, user_id, policy.rpm_limit, now)
    if window.free_in is None:
        return None
    return Refusal(RefusalReason.RATE_LIMITED,
                   f"You have used your {policy.rpm_limit} requests for this minute (role {strong(policy.role)}).",
                   f"A slot frees in {window.free_in} s.", retry_after_seconds=window.free_in)
