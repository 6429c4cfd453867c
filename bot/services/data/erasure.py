"""Erasure (docs/channels-and-data.md): `/claude-admin forget <user>` and `claude-gate forget U…` remove what Claude
Gate stored of a person's words and personal settings; their counts and costs (👍/👎 included) stay, attributed to the
same ID.

What goes: prompt text kept with LOG_PROMPTS, scheduled prompts (`/claude schedule`, deleted), the reasons typed into
access requests, the default model (`/claude model`), the channel they last viewed (app_context_changed) and the
threads they were answered in (the follow-up map). What stays: every number of their request records, their roles, and
the audit log, which gains one row saying who erased whom and how much.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.schedules.store import erase_schedules_of
from bot.store.db import rows_affected
from bot.store.models import AccessRequest, AnsweredThread, RequestRecord, UserPreference, ViewingContext

ERASED_REASON = ""  # an access request's reason is required: erased, it is empty


@dataclass(frozen=True)
class Erasure:
    prompts: int
    access_request_reasons: int
    preferences: int
    viewing_contexts: int
    answered_threads: int
    schedules: int = 0  # scheduled prompts, deleted with their prompt text

    @property
    def counts(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def forget_person(session: AsyncSession, user_id: str) -> Erasure:
    """Erase ``user_id``'s stored words and preferences in the caller's transaction (which audits it)."""
    prompts = await session.execute(update(RequestRecord).where(
        RequestRecord.slack_user_id == user_id, RequestRecord.prompt.is_not(None)).values(prompt=None)
        .execution_options(synchronize_session=False))
    reasons = await session.execute(update(AccessRequest).where(
        AccessRequest.slack_user_id == user_id, AccessRequest.reason != ERASED_REASON).values(reason=ERASED_REASON)
        .execution_options(synchronize_session=False))
    preferences = await session.execute(delete(UserPreference).where(UserPreference.slack_user_id == user_id)
                                        .execution_options(synchronize_session=False))
    contexts = await session.execute(delete(ViewingContext).where(ViewingContext.slack_user_id == user_id)
                                     .execution_options(synchronize_session=False))
    threads = await session.execute(delete(AnsweredThread).where(AnsweredThread.slack_user_id == user_id)
                                    .execution_options(synchronize_session=False))
    schedules = await erase_schedules_of(session, user_id)
    return Erasure(rows_affected(prompts) or 0, rows_affected(reasons) or 0, rows_affected(preferences) or 0,
                   rows_affected(contexts) or 0, rows_affected(threads) or 0, schedules)
