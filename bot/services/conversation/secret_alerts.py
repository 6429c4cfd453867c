"""Admins hear of a credential someone tried to send to Claude (SECRET_POLICY=block): once per person per hour,
across processes, never with the secret. To ADMIN_ALERT_CHANNEL, or a DM to each owner when it is unset."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from bot.domain.channels import is_channel
from bot.domain.marks import Icon, icon
from bot.domain.mentions import channel_link, mention
from bot.domain.requests import ChatRequest
from bot.domain.roles import Role
from bot.domain.secrets import kinds_phrase
from bot.services.base import Service
from bot.services.conversation.observer import QuietObserver
from bot.store.leases import claim_once_per
from bot.store.models import RoleGrant

log = logging.getLogger(__name__)

SECRET_ALERT_PERIOD = timedelta(hours=1)


def secret_alert_text(request: ChatRequest) -> str:
    channel = request.channel_id
    where = f"in {channel_link(channel)}" if channel and is_channel(channel) else f"in a {request.surface or 'DM'}"
    return (f"{icon(Icon.ALERT)} {mention(request.requester.user_id)} tried to send {kinds_phrase(request.secrets)} to "
            f"Claude {where}. It was not sent to Claude and not stored; they were asked to rotate it. "
            "(At most one such alert per person an hour.)")


class SecretAlerts(Service, QuietObserver):

    async def secret_blocked(self, request: ChatRequest) -> None:
        """The observer's ``secret_blocked``. Never raises: an alert must not break the refusal."""
        user = request.requester.user_id
        try:
            async with self.sessions.begin() as session:
                if not await claim_once_per(session, f"alert.secret:{user}"[:64], self.clock(), SECRET_ALERT_PERIOD):
                    return
                owners = [] if self.settings.admin_alert_channel else list(await session.scalars(
                    select(RoleGrant.slack_user_id).where(RoleGrant.role == Role.OWNER.value)))
            log.warning("blocked a message of %s holding %s", user, ", ".join(request.secrets))
            text = secret_alert_text(request)
            if self.settings.admin_alert_channel:
                await self.slack.post(self.settings.admin_alert_channel, text)
            for owner in owners:
                await self.slack.send_dm(owner, text)
        except Exception:
            log.exception("alerting admins about a blocked secret of %s failed", user)
