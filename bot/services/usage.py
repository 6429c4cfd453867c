"""Finishing request records: tokens, estimated cost, latency, outcome. A record is never lost."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.decisions import Outcome
from bot.domain.pricing import Price, estimated_cost
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15, 30)


async def complete_request(sessions: async_sessionmaker[AsyncSession], *, record_id: int, model: str,
                           outcome: Outcome, input_tokens: int, output_tokens: int, latency_ms: int,
                           error_type: str | None = None, prices: dict[str, Price] | None = None) -> None:
    """Write the final numbers of an admitted request, retrying through a database hiccup."""
    values = {
        "outcome": outcome.value,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "estimated_cost": estimated_cost(model, input_tokens, output_tokens, prices),
        "latency_ms": latency_ms,
        "error_type": error_type,
    }
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
        await asyncio.sleep(delay)
        try:
            async with sessions.kw["bind"].begin() as connection:  # Core: one UPDATE, no unit of work
                await connection.execute(update(RequestRecord).where(RequestRecord.id == record_id).values(**values))
            return
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("could not finish request record %s (attempt %d): %s", record_id, attempt + 1,
                        type(exc).__name__)
    log.error("request record %s left as in flight after %d attempts: %s", record_id, len(RETRY_DELAYS) + 1, values)


@dataclass
class UsageSummary:
    since: datetime
    requests: int = 0  # admitted
    refusals: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    thumbs_up: int = 0
    thumbs_down: int = 0
    top_users: list[tuple[str, int, float]] = field(default_factory=list)  # user, requests, cost

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


async def usage_summary(session: AsyncSession, *, since: datetime, user_id: str | None = None,
                        role: str | None = None, top: int = 5) -> UsageSummary:
    """Requests, refusals by reason, tokens, estimated cost, feedback and top users since ``since``."""
    scope = [RequestRecord.created_at >= since]
    if user_id is not None:
        scope.append(RequestRecord.slack_user_id == user_id)
    if role is not None:
        scope.append(RequestRecord.role == role)
    summary = UsageSummary(since=since)
    totals = (await session.execute(
        select(func.count(), func.coalesce(func.sum(RequestRecord.input_tokens), 0),
               func.coalesce(func.sum(RequestRecord.output_tokens), 0),
               func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0))
        .where(*scope, RequestRecord.admitted.is_(True))
    )).one()
    summary.requests, summary.input_tokens, summary.output_tokens = int(totals[0]), int(totals[1]), int(totals[2])
    summary.cost = float(totals[3])
    by_outcome = await session.execute(
        select(RequestRecord.outcome, RequestRecord.refusal_reason, RequestRecord.feedback, func.count())
        .where(*scope).group_by(RequestRecord.outcome, RequestRecord.refusal_reason, RequestRecord.feedback))
    for outcome, reason, feedback, count in by_outcome:
        if outcome == Outcome.REFUSED.value:
            summary.refusals[reason or "unknown"] = summary.refusals.get(reason or "unknown", 0) + count
        elif outcome == Outcome.ERROR.value:
            summary.errors += count
        if feedback == "up":
            summary.thumbs_up += count
        elif feedback == "down":
            summary.thumbs_down += count
    if user_id is None:
        cost = func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0)
        rows = await session.execute(
            select(RequestRecord.slack_user_id, func.count(), cost)
            .where(*scope, RequestRecord.admitted.is_(True))
            .group_by(RequestRecord.slack_user_id).order_by(cost.desc(), func.count().desc()).limit(top))
        summary.top_users = [(user, int(count), float(total)) for user, count, total in rows]
    return summary


async def usage_by_user(session: AsyncSession, *, since: datetime) -> list[tuple[Any, ...]]:
    """One row per user since ``since``: requests, refused, errors, tokens in/out, cost, 👍, 👎 (for CSV)."""
    admitted = RequestRecord.admitted.is_(True)
    rows = await session.execute(
        select(RequestRecord.slack_user_id,
               func.sum(case((admitted, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.REFUSED.value, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.ERROR.value, 1), else_=0)),
               func.coalesce(func.sum(RequestRecord.input_tokens), 0),
               func.coalesce(func.sum(RequestRecord.output_tokens), 0),
               func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0),
               func.sum(case((RequestRecord.feedback == "up", 1), else_=0)),
               func.sum(case((RequestRecord.feedback == "down", 1), else_=0)))
        .where(RequestRecord.created_at >= since)
        .group_by(RequestRecord.slack_user_id)
        .order_by(func.coalesce(func.sum(RequestRecord.estimated_cost), 0.0).desc(), RequestRecord.slack_user_id))
    return [(user, int(req), int(ref), int(err), int(tin), int(tout), round(float(cost), 6), int(up), int(down))
            for user, req, ref, err, tin, tout, cost, up, down in rows]
