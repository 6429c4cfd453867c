"""Anthropic's Admin API (organisation API keys and users) through the official SDK; its types stop here.

The SDK authenticates with the key given as ``api_key`` (sent as ``Authorization: Bearer``): here that is
ANTHROPIC_ADMIN_KEY, never a key used for messages. It retries 408/409/429/5xx itself (max_retries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

from bot.config import Settings
from bot.domain.errors import AdminApiError as AdminApiError

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API allows 1..1000


@dataclass(frozen=True)
class OrgKey:
    """An organisation API key as the Admin API reports it (no secret: only Anthropic's partial hint)."""

    id: str
    name: str
    status: str  # active / inactive / archived / expired
    workspace_id: str | None  # None: organisation-scoped
    hint: str | None
    created_at: datetime
    creator_id: str | None
    creator_type: str | None  # user / service_account


@dataclass(frozen=True)
class OrgUser:
    id: str
    email: str
    name: str


@dataclass(frozen=True)
class ReportedCost:
    """One row of Anthropic's cost report: a UTC day, the key that authenticated the requests, the model."""

    day: date
    api_key_id: str | None  # None: usage no API key authenticated
    model: str | None
    micros: int  # at list price (pre-discount), as the gate prices requests


@dataclass(frozen=True)
class OrgKeyListing:
    keys: list[OrgKey]
    pages: int


def _org_key(key: Any) -> OrgKey:
    scope = getattr(key, "scope", None)
    creator = key.created_by
    return OrgKey(id=key.id, name=key.name, status=key.status, workspace_id=getattr(scope, "workspace_id", None),
                  hint=key.partial_key_hint, created_at=key.created_at,
                  creator_id=creator.id if creator else None, creator_type=creator.type if creator else None)


def _failure(exc: Exception, doing: str) -> AdminApiError:
    import anthropic

    if isinstance(exc, anthropic.AuthenticationError):
        return AdminApiError(f"Anthropic refused ANTHROPIC_ADMIN_KEY while {doing} (401): it must be an Admin API "
                             "key (sk-ant-admin…) from Console → Settings → Admin keys.")
    if isinstance(exc, anthropic.PermissionDeniedError):
        return AdminApiError(f"ANTHROPIC_ADMIN_KEY may not do that ({doing}: 403 permission denied).")
    if isinstance(exc, anthropic.NotFoundError):
        return AdminApiError(f"Anthropic does not know that id ({doing}: 404 not found).")
    if isinstance(exc, anthropic.RateLimitError):
        return AdminApiError(f"Anthropic's Admin API is rate-limiting us ({doing}: 429). Try again in a minute.")
    if isinstance(exc, anthropic.APITimeoutError):
        return AdminApiError(f"Anthropic's Admin API did not answer in time ({doing}).")
    if isinstance(exc, anthropic.APIConnectionError):
        return AdminApiError(f"Could not reach Anthropic's Admin API ({doing}).")
    if isinstance(exc, anthropic.APIStatusError):
        return AdminApiError(f"Anthropic's Admin API failed ({doing}: HTTP {exc.status_code}).")
    return AdminApiError(f"Anthropic's Admin API answered something unexpected ({doing}: {type(exc).__name__}).")


class AnthropicAdmin:
    """A short-lived Admin API client: ``async with AnthropicAdmin.from_settings(settings) as admin: …``."""

    def __init__(self, admin_key: str, *, base_url: str | None = None, max_retries: int = 2,
                 timeout: float = 30.0, page_size: int = PAGE_SIZE) -> None:
        import anthropic  # here, not at the top: the SDK's import takes seconds, and `claude-gate grant` needs none

        self.page_size = page_size
        self.client = anthropic.AsyncAnthropic(api_key=admin_key, base_url=base_url, max_retries=max_retries,
                                               timeout=timeout)
        self.errors = anthropic.AnthropicError

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> AnthropicAdmin | None:
        """None when ANTHROPIC_ADMIN_KEY is not set (the Admin API features are off)."""
        if settings.anthropic_admin_key is None:
            return None
        return cls(settings.anthropic_admin_key.get_secret_value(), base_url=settings.anthropic_base_url, **options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.client.close()

    async def list_keys(self, *, created_by_user_id: str | None = None, status: str | None = None) -> OrgKeyListing:
        """Every organisation key (all pages), optionally only those one user created / with one status."""
        filters: dict[str, Any] = {}
        if created_by_user_id is not None:
            filters["created_by_user_id"] = created_by_user_id
        if status is not None:
            filters["status"] = status
        try:
            page = await self.client.organization.api_keys.list(limit=self.page_size, **filters)
            keys, pages = [_org_key(key) for key in page.data], 1
            while page.has_next_page():
                page = await page.get_next_page()
                keys.extend(_org_key(key) for key in page.data)
                pages += 1
        except self.errors as exc:
            raise _failure(exc, "listing API keys") from exc
        return OrgKeyListing(keys, pages)

    async def get_key(self, key_id: str) -> OrgKey:
        try:
            return _org_key(await self.client.organization.api_keys.retrieve(key_id))
        except self.errors as exc:
            raise _failure(exc, f"reading key {key_id}") from exc

    async def deactivate_key(self, key_id: str) -> OrgKey:
        """Set the key ``inactive``: Anthropic refuses it from then on (it can be re-activated in the Console)."""
        try:
            return _org_key(await self.client.organization.api_keys.update(key_id, status="inactive"))
        except self.errors as exc:
            raise _failure(exc, f"deactivating key {key_id}") from exc

    async def list_users(self) -> list[OrgUser]:
        try:
            page = await self.client.organization.users.list(limit=self.page_size)
            users = [OrgUser(u.id, u.email, u.name) for u in page.data]
            while page.has_next_page():
                page = await page.get_next_page()
                users.extend(OrgUser(u.id, u.email, u.name) for u in page.data)
        except self.errors as exc:
            raise _failure(exc, "listing organisation users") from exc
        return users

    async def daily_costs(self, first: date, last: date) -> list[ReportedCost]:
        """Anthropic's cost per API key, model and UTC day from ``first`` to ``last`` (inclusive, at most 31
        days): the analytics cost report (``beta.organization.analytics.cost``), every page, at list price (a
        negotiated discount would otherwise show as drift every day)."""
        starting = datetime.combine(first, time(), tzinfo=UTC)
        ending = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
        rows: list[ReportedCost] = []
        try:
            async for item in self.client.beta.organization.analytics.cost.list(
                    starting_at=starting, ending_at=ending, group_by=["api_key_id", "model"],
                    time_bucket_width="1d", limit=1000):
                cents = Decimal(item.cost.list_amount)  # fractional cents at list price, as our prices are
                rows.append(ReportedCost(item.starting_at.astimezone(UTC).date(), item.group.api_key_id,
                                         item.group.model, int((cents * 10_000).to_integral_value())))
        except self.errors as exc:
            raise _failure(exc, "reading the cost report") from exc
        return rows

    async def find_user_by_email(self, email: str) -> OrgUser | None:
        try:
            page = await self.client.organization.users.list(email=email, limit=self.page_size)
        except self.errors as exc:
            raise _failure(exc, "looking up a user by email") from exc
        for user in page.data:
            if user.email.lower() == email.lower():
                return OrgUser(user.id, user.email, user.name)
        return None
