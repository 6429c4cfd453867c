"""Alerts to ADMIN_ALERT_CHANNEL about keys: a key Anthropic refuses (401/403) and, later, accepts again; a workspace
with no usable key.

Each alert is sent once, not once per request: a refused key is alerted by whoever (in any process) moves it
from ``active`` to ``failing``; "no usable key" at most once an hour per workspace (a lease row). Alerts never
raise: a broken alert must not break an answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.domain.replies import Answer
from bot.domain.requests import ChatRequest
from bot.services.access.policies import load_policy
from bot.services.access.roles import effective_role
from bot.services.base import Service
from bot.services.conversation.claude import ClaudeFailure
from bot.services.conversation.observer import QuietObserver
from bot.services.keys.choice import mark_key_failing, mark_key_recovered, secret_of
from bot.services.ports import SlackCallFailed
from bot.store.leases import claim_once_per, current_lease
from bot.store.models import ApiKey

log = logging.getLogger(__name__)

NO_KEY_ALERT_PERIOD = timedelta(hours=1)


@dataclass(frozen=True)
class KeyFailureAlert(Answer):
    label: str
    workspace: str
    status: int | None
    error_type: str


@dataclass(frozen=True)
class KeyRecoveredAlert(Answer):
    label: str


@dataclass(frozen=True)
class NoKeyAlert(Answer):
    workspace: str
    role: str
    keys: list[tuple[str, str, bool, str]]  # (label, status, variable set in this process, variable)


class KeyAlerts(Service, QuietObserver):

    async def key_failed(self, label: str, failure: ClaudeFailure) -> None:
        """The observer's ``key_failed``: mark the key ``failing`` and alert once."""
        try:
            reason = f"{failure.status or '-'} {failure.detail}".strip()
            async with self.sessions.begin() as session:
                first = await mark_key_failing(session, self.clock, label, reason=reason)
                row = await session.scalar(select(ApiKey).where(ApiKey.label == label)) if first else None
            if row is not None:
                log.warning("API key %s was refused by Anthropic (%s): marked failing", label, reason)
                await self._post(KeyFailureAlert(label=label, workspace=row.workspace, status=failure.status,
                                                 error_type=failure.detail))
        except Exception:
            log.exception("alerting about key %s failed", label)

    async def key_recovered(self, label: str, asked_at: datetime) -> None:
        """The observer's ``key_recovered``: a ``failing`` key got a request made at ``asked_at`` through
        (re-activated at Anthropic, or the refusal passed); mark it active and tell admins once."""
        try:
            async with self.sessions.begin() as session:
                first = await mark_key_recovered(session, self.clock, label, asked_at=asked_at)
            if first:
                log.warning("API key %s was accepted by Anthropic again: marked active", label)
                await self._post(KeyRecoveredAlert(label=label))
        except Exception:
            log.exception("marking key %s active again failed", label)

    async def no_active_key(self, request: ChatRequest) -> bool:
        """The observer's ``no_active_key``: tell admins which workspace has no usable key (once an hour). True
        when admins have been told: now, or by an alert delivered within the hour (a second lease row says so)."""
        try:
            now = self.clock()
            async with self.sessions.begin() as session:
                role = (await effective_role(session, request.requester.user_id, self.settings.default_role)).role
                workspace = (await load_policy(session, role)).workspace
                told = f"alert.no-key-told:{workspace}"[:64]
                if not await claim_once_per(session, f"alert.no-key:{workspace}"[:64], now, NO_KEY_ALERT_PERIOD):
                    return await current_lease(session, told, now) is not None
                rows = list(await session.scalars(select(ApiKey).where(ApiKey.workspace == workspace,
                                                                       ApiKey.env_var.is_not(None))))
            known = [(row.label, row.status, bool(row.env_var and secret_of(row.env_var)), row.env_var or "")
                     for row in rows]
            log.warning("no usable API key for workspace %s (role %s refused)", workspace, role)
            if not await self._post(NoKeyAlert(workspace=workspace, role=role.value, keys=known)):
                return False
            async with self.sessions.begin() as session:
                await claim_once_per(session, told, now, NO_KEY_ALERT_PERIOD)
            return True
        except Exception:
            log.exception("alerting about a workspace without a key failed")
            return False

    async def _post(self, alert: Answer) -> bool:
        """Deliver an alert to ADMIN_ALERT_CHANNEL; whether it was delivered."""
        channel = self.settings.admin_alert_channel
        if not channel:
            log.warning("ADMIN_ALERT_CHANNEL is not set; alert not posted: %s", alert)
            return False
        try:
            await self.slack.deliver(channel, alert)
        except SlackCallFailed as exc:
            log.warning("could not post an alert in %s (%s): %s", channel, exc.reason, alert)
            return False
        return True
