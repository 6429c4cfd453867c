"""👍/👎 on answers, stored on the request record the answer belongs to (read by the usage report)."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import RequestRecord


class FeedbackOutcome(StrEnum):
    RECORDED = "recorded"
    NOT_YOURS = "not_yours"  # only the person who asked may rate an answer
    UNKNOWN = "unknown"  # no such request (or it was never answered)


async def rate_answer(sessions: async_sessionmaker[AsyncSession], *, record_id: int, user_id: str,
                      rating: str) -> FeedbackOutcome:
    """Store ``rating`` ("up" or "down") on the record; a later click replaces an earlier one."""
    async with sessions.begin() as session:
        record = await session.get(RequestRecord, record_id)
        if record is None or not record.admitted:
            return FeedbackOutcome.UNKNOWN
        if record.slack_user_id != user_id:
            return FeedbackOutcome.NOT_YOURS
        record.feedback = rating
    return FeedbackOutcome.RECORDED
