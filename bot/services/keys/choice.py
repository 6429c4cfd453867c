"""Which key serves a request, read from the database at every request and again before every call to Anthropic.

The rule, in one place (``USABLE_KEY`` and ``KEY_PREFERENCE``, used by ``active_key`` and by the gate's access
statement): of a workspace's registered keys that are active or failing, active before failing, the newest first;
a key whose variable does not hold an API key in this process is skipped.

``KeyGuard`` closes the window between the check of a key and the call that uses it (docs/keys.md: no call starts
with a key after its revoke was acknowledged): each call to Anthropic, first try or retry, re-reads its key under a
lock held until Anthropic has answered the request, and `keys revoke` takes the same lock exclusively before it
commits, so it waits for the checks under way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bot.domain.keys import USABLE, KeyStatus, is_api_key
from bot.services.data.audit import add_audit
from bot.store.clock import Clock
from bot.store.db import READ_ONLY, rows_affected
from bot.store.models import ApiKey

USABLE_STATUSES = tuple(status.value for status in USABLE)
KEY_RECOVERY_QUIET = timedelta(minutes=5)  # a failing key is trusted again by a request this long after its refusal


def usable_key(table: type[ApiKey] | object = ApiKey) -> ColumnElement[bool]:
    """A registered key (it has a variable) that may serve requests: active or failing.

    ``status = … OR status = …``, not ``IN (…)``: SQLAlchemy re-renders the SQL of an IN list at every execution.
    """
    columns = getattr(table, "c", table)
    return and_(or_(*(columns.status == status for status in USABLE_STATUSES)),  # type: ignore[attr-defined]
                columns.env_var.is_not(None))  # type: ignore[attr-defined]


def key_preference(table: type[ApiKey] | object = ApiKey) -> tuple[ColumnElement[object], ...]:
    """Active before failing, then the newest registration (the order in which a workspace's keys serve it)."""
    columns = getattr(table, "c", table)
    return (case((columns.status == KeyStatus.ACTIVE.value, 0), else_=1),  # type: ignore[attr-defined]
            columns.created_at.desc(), columns.id.desc())  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KeyChoice:
    label: str
    env_var: str
    status: str = KeyStatus.ACTIVE.value

    @property
    def failing(self) -> bool:
        """Marked failing after Anthropic refused it; a request that gets through heals it."""
        return self.status == KeyStatus.FAILING.value

    @property
    def secret(self) -> str | None:
        return secret_of(self.env_var)


def secret_of(env_var: str) -> str | None:
    """The API key in ``env_var``, or None when the variable is unset or holds anything but a workspace API key.

    Checked at every use, not only at `keys add`: a key registered before this check existed, or a variable
    changed since, never sends a Slack token or a database URL to Anthropic.
    """
    value = os.environ.get(env_var)
    return value if is_api_key(value) else None


async def active_key(session: AsyncSession | AsyncConnection, workspace: str) -> KeyChoice | None:
    """The key a request in ``workspace`` uses now (the rule above)."""
    rows = await session.execute(
        select(ApiKey.label, ApiKey.env_var, ApiKey.status)
        .where(ApiKey.workspace == workspace, usable_key()).order_by(*key_preference()))
    for label, env_var, status in rows:
        if env_var is not None and secret_of(env_var):
            return KeyChoice(label, env_var, status)
    return None


# the status of key ``label`` held in ``env_var`` (built once: building a statement costs more than running it)
KEY_STATUS = select(ApiKey.status).where(ApiKey.label == bindparam("label"), ApiKey.env_var == bindparam("env_var"))
KEY_STATUS_SHARED = KEY_STATUS.with_for_update(read=True)  # PostgreSQL: the row lock `keys revoke` waits for


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer is not overtaken by new readers."""

    def __init__(self) -> None:
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        async with self._changed:
            self._writers_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._writing and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            async with self._changed:
                self._writing = False
                self._changed.notify_all()


class KeyGuard:
    """The lock between a key's check and the call that uses it, which `keys revoke` also takes.

    PostgreSQL: the check reads the key's row ``FOR SHARE`` in a transaction kept open until the call has been
    answered; the revoke's ``SELECT … FOR UPDATE`` waits for it, in any process. SQLite: a process-wide
    read/write lock per key label (an SQLite database serves one process; its write lock would stop every other
    writer for the length of a call).
    """

    _local: dict[str, _ReadWriteLock] = {}  # one per process (per key label), shared by every KeyGuard

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})  # SQLite: a deferred BEGIN, no write lock

    @classmethod
    def _lock(cls, label: str) -> _ReadWriteLock:
        return cls._local.setdefault(label, _ReadWriteLock())

    @asynccontextmanager
    async def checked(self, label: str, env_var: str) -> AsyncIterator[str | None]:
        """The secret of key ``label`` if it may still serve requests (else None), held until the block ends: start
        the call inside the block, leave it once Anthropic has answered."""
        params = {"label": label, "env_var": env_var}
        if self.engine.dialect.name == "postgresql":
            async with self.engine.connect() as connection, connection.begin():
                status = await connection.scalar(KEY_STATUS_SHARED, params)
                yield secret_of(env_var) if status in USABLE_STATUSES else None
            return
        async with self._lock(label).reading():
            async with self._reader.connect() as connection:
                status = await connection.scalar(KEY_STATUS, params)
                await connection.rollback()
            yield secret_of(env_var) if status in USABLE_STATUSES else None

    @asynccontextmanager
    async def revoking(self, label: str) -> AsyncIterator[None]:
        """Held by `keys revoke` until its change is committed (PostgreSQL: its row lock does the waiting)."""
        if self.engine.dialect.name == "postgresql":
            yield
            return
        async with self._lock(label).writing():
            yield


async def mark_key_failing(session: AsyncSession, clock: Clock, label: str, *, reason: str) -> bool:
    """Mark an active key ``failing``; True only for the one caller (in any process) that made the change.

    Every refusal is noted (``last_refused_at``), also of a key already failing: that keeps it failing a while.
    """
    now = clock()
    refused = update(ApiKey).where(ApiKey.label == label).execution_options(synchronize_session=False)
    result = await session.execute(
        refused.where(ApiKey.status == KeyStatus.ACTIVE.value)
        .values(status=KeyStatus.FAILING.value, last_alerted_at=now, last_refused_at=now))
    if not rows_affected(result):
        await session.execute(refused.where(ApiKey.status == KeyStatus.FAILING.value).values(last_refused_at=now))
        return False
    add_audit(session, at=now, actor="system", action="keys.failing", target=label, reason=reason)
    return True


async def mark_key_recovered(session: AsyncSession, clock: Clock, label: str, *, asked_at: datetime) -> bool:
    """Anthropic accepted a ``failing`` key again (it was re-activated, or the refusal passed): mark it active.

    Only a request made (``asked_at``) after ``KEY_RECOVERY_QUIET`` without a refusal counts, so a key refused on
    and off stays failing instead of flapping, and an answer that started before a newer refusal proves nothing.
    True only for the one caller (in any process) that made the change.
    """
    result = await session.execute(
        update(ApiKey).where(ApiKey.label == label, ApiKey.status == KeyStatus.FAILING.value,
                             or_(ApiKey.last_refused_at.is_(None),
                                 ApiKey.last_refused_at <= asked_at - KEY_RECOVERY_QUIET))
        .values(status=KeyStatus.ACTIVE.value).execution_options(synchronize_session=False)
    )
    if not rows_affected(result):
        return False
    now = clock()
    add_audit(session, at=now, actor="system", action="keys.recovered", target=label,
              reason="Anthropic accepted it again")
    return True
