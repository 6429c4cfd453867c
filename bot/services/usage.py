"""Finishing request records: tokens, estimated cost, latency, outcome. A record is never lost."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.decisions import Outcome
from bot.domain.pricing import estimated_cost
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15, 30)


async def complete_request(sessions: async_sessionmaker[AsyncSession], *, record_id: int, model: str,
                           outcome: Outcome, input_tokens: int, output_tokens: int, latency_ms: int,
                           error_type: str | None = None) -> None:
    """Write the final numbers of an admitted request, retrying through a database hiccup."""
    values = {
        "outcome": outcome.value,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "estimated_cost": estimated_cost(model, input_tokens, output_tokens),
        "latency_ms": latency_ms,
        "error_type": error_type,
    }
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
        await asyncio.sleep(delay)
        try:
            async with sessions.begin() as session:
                await session.execute(update(RequestRecord).where(RequestRecord.id == record_id).values(**values))
            return
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("could not finish request record %s (attempt %d): %s", record_id, attempt + 1,
                        type(exc).__name__)
    log.error("request record %s left as in flight after %d attempts: %s", record_id, len(RETRY_DELAYS) + 1, values)
