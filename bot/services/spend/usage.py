"""Usage reports from the request records (written by bot/services/conversation/records.py).

A record counts ``requests`` requests: 1, or many for the aggregate of refusals counted while the database was away
(bot/services/conversation/records.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.decisions import Outcome
from bot.domain.pricing import PriceTable, cache_saving_micros
from bot.price_source import list_prices
from bot.store.models import RequestRecord


@dataclass
class UsageSummary:
    since: datetime
    requests: int = 0  # admitted
    refusals: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    stopped: int = 0  # answers stopped with Slack's stop button
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_saving_micros: int = 0  # what the cache reads saved, net of the dearer cache writes
    thumbs_up: int = 0
    thumbs_down: int = 0
    top_users: list[tuple[str, int, float]] = field(default_factory=list)  # user, requests, cost
    top_channels: list[tuple[str, int, int]] = field(default_factory=list)  # channel, requests, micro-dollars

    @property
    def cost(self) -> float:
        return self.cost_micros / 1_000_000

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


async def usage_summary(session: AsyncSession, *, since: datetime, user_id: str | None = None,
                        role: str | None = None, top: int = 5,
                        prices: PriceTable | None = None) -> UsageSummary:
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
               func.coalesce(func.sum(RequestRecord.cost_micros), 0))
        .where(*scope, RequestRecord.admitted.is_(True))
    )).one()
    summary.requests, summary.input_tokens, summary.output_tokens = int(totals[0]), int(totals[1]), int(totals[2])
    summary.cost_micros = int(totals[3])
    by_outcome = await session.execute(
        select(RequestRecord.outcome, RequestRecord.refusal_reason, RequestRecord.feedback,
               func.sum(RequestRecord.requests))
        .where(*scope).group_by(RequestRecord.outcome, RequestRecord.refusal_reason, RequestRecord.feedback))
    for outcome, reason, feedback, count in by_outcome:
        if outcome == Outcome.REFUSED.value:
            summary.refusals[reason or "unknown"] = summary.refusals.get(reason or "unknown", 0) + int(count)
        elif outcome == Outcome.ERROR.value:
            summary.errors += int(count)
        elif outcome == Outcome.STOPPED.value:
            summary.stopped += int(count)
        if feedback == "up":
            summary.thumbs_up += int(count)
        elif feedback == "down":
            summary.thumbs_down += int(count)
    by_model = await session.execute(
        select(RequestRecord.model, func.coalesce(func.sum(RequestRecord.cache_write_tokens), 0),
               func.coalesce(func.sum(RequestRecord.cache_read_tokens), 0))
        .where(*scope, RequestRecord.admitted.is_(True))
        .group_by(RequestRecord.model))
    for model, written, read in by_model:
        summary.cache_write_tokens += int(written)
        summary.cache_read_tokens += int(read)
        summary.cache_saving_micros += cache_saving_micros(model or "", int(written), int(read),
                                                      list_prices() if prices is None else prices)
    if user_id is None:
        cost = func.coalesce(func.sum(RequestRecord.cost_micros), 0)
        rows = await session.execute(
            select(RequestRecord.slack_user_id, func.count(), cost)
            .where(*scope, RequestRecord.admitted.is_(True))
            .group_by(RequestRecord.slack_user_id).order_by(cost.desc(), func.count().desc()).limit(top))
        summary.top_users = [(user, int(count), int(total) / 1_000_000) for user, count, total in rows]
    channel = RequestRecord.channel_id
    rows = await session.execute(
        select(channel, func.count(), func.coalesce(func.sum(RequestRecord.cost_micros), 0))
        .where(*scope, RequestRecord.admitted.is_(True), or_(channel.like("C%"), channel.like("G%")))
        .group_by(channel).order_by(func.sum(RequestRecord.cost_micros).desc(), func.count().desc()).limit(top))
    summary.top_channels = [(str(c), int(count), int(total)) for c, count, total in rows]
    return summary


async def usage_by_user(session: AsyncSession, *, since: datetime) -> list[tuple[Any, ...]]:
    """One row per user since ``since``: requests, refused, errors, tokens in/out, cost, 👍, 👎, cache writes and
    reads (for CSV)."""
    admitted = RequestRecord.admitted.is_(True)
    rows = await session.execute(
        select(RequestRecord.slack_user_id,
               func.sum(case((admitted, 1), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.REFUSED.value, RequestRecord.requests), else_=0)),
               func.sum(case((RequestRecord.outcome == Outcome.ERROR.value, 1), else_=0)),
               func.coalesce(func.sum(RequestRecord.input_tokens), 0),
               func.coalesce(func.sum(RequestRecord.output_tokens), 0),
               func.coalesce(func.sum(RequestRecord.cost_micros), 0),
               func.sum(case((RequestRecord.feedback == "up", 1), else_=0)),
               func.sum(case((RequestRecord.feedback == "down", 1), else_=0)),
               func.coalesce(func.sum(RequestRecord.cache_write_tokens), 0),
               func.coalesce(func.sum(RequestRecord.cache_read_tokens), 0))
        .where(RequestRecord.created_at >= since)
        .group_by(RequestRecord.slack_user_id)
        .order_by(func.coalesce(func.sum(RequestRecord.cost_micros), 0).desc(), RequestRecord.slack_user_id))
    return [(user, int(req), int(ref), int(err), int(tin), int(tout), int(cost) / 1_000_000, int(up), int(down),
             int(cw), int(cr)) for user, req, ref, err, tin, tout, cost, up, down, cw, cr in rows]
