"""Anthropic API keys: which key a workspace uses. Secrets live only in environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.audit import add_audit
from bot.store.clock import Clock
from bot.store.models import ApiKey

DEFAULT_KEY_LABEL = "default"
DEFAULT_WORKSPACE = "default"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
USABLE_STATUSES = ("active", "failing")


@dataclass(frozen=True)
class KeyChoice:
    label: str
    env_var: str


def key_hint(secret: str) -> str:
    """What may be shown of a key: its kind prefix and last four characters, e.g. ``sk-ant-api03-…AbCd``."""
    if len(secret) < 12:
        return "…" + secret[-2:]
    prefix = secret[: secret.index("-", 7) + 1] if secret.startswith("sk-ant-") and "-" in secret[7:] else ""
    return f"{prefix}…{secret[-4:]}"


def secret_of(env_var: str) -> str | None:
    return os.environ.get(env_var) or None


async def ensure_default_key(session: AsyncSession, clock: Clock, *, rotate_days: int) -> None:
    """ANTHROPIC_API_KEY is key ``default`` of workspace ``default``."""
    exists = await session.scalar(select(ApiKey.id).where(ApiKey.label == DEFAULT_KEY_LABEL))
    if exists is not None:
        return
    secret = secret_of(DEFAULT_KEY_ENV)
    now = clock()
    session.add(ApiKey(label=DEFAULT_KEY_LABEL, workspace=DEFAULT_WORKSPACE, env_var=DEFAULT_KEY_ENV,
                       key_hint=key_hint(secret) if secret else None, created_at=now, rotate_days=rotate_days,
                       status="active"))
    add_audit(session, at=now, actor="system", action="keys.add", target=DEFAULT_KEY_LABEL,
              workspace=DEFAULT_WORKSPACE, env_var=DEFAULT_KEY_ENV)


async def active_key(session: AsyncSession, workspace: str) -> KeyChoice | None:
    """The key a request in ``workspace`` uses, read from the database at every request (a revoke applies at once)."""
    rows = await session.execute(
        select(ApiKey.label, ApiKey.env_var)
        .where(ApiKey.workspace == workspace, ApiKey.status.in_(USABLE_STATUSES), ApiKey.env_var.is_not(None))
        .order_by(ApiKey.status, ApiKey.created_at.desc())  # "active" sorts before "failing"
    )
    for label, env_var in rows:
        if secret_of(env_var):
            return KeyChoice(label, env_var)
    return None
