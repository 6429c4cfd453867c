"""A user's own settings: the default model (`/claude model <alias>`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.clock import Clock
from bot.store.models import UserPreference


async def preferred_model(session: AsyncSession, user_id: str) -> str | None:
    preference = await session.get(UserPreference, user_id)
    return preference.preferred_model if preference else None


async def set_preferred_model(session: AsyncSession, clock: Clock, user_id: str, model: str) -> None:
    """Store the alias or model ID as given (aliases follow MODEL_* changes)."""
    preference = await session.get(UserPreference, user_id)
    if preference is None:
        session.add(UserPreference(slack_user_id=user_id, preferred_model=model, updated_at=clock()))
    else:
        preference.preferred_model, preference.updated_at = model, clock()
