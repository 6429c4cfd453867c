"""The admins' daily digest (docs/spend.md#daily-digest): yesterday in BUDGET_TZ, in one message.

A role's per-person budget alerts only the person, so admins would never hear that twelve people ran out: at
08:00 in BUDGET_TZ the scheduler's leader posts who used up a budget yesterday, the refusals by reason, the top
spenders and models, and (with ANTHROPIC_ADMIN_KEY) the drift against Anthropic's cost report, to
ADMIN_ALERT_CHANNEL or, without one, to each owner's DM. A run missed while no process was up runs at the next
hourly check; it runs once a day whatever the number of processes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.domain.days import local_day, midnight
from bot.domain.decisions import RefusalReason
from bot.domain.errors import AdminApiError
from bot.domain.marks import Icon, icon, unmarked
from bot.domain.mentions import mention
from bot.domain.pricing import format_usd
from bot.domain.replies import Reply
from bot.domain.roles import Role
from bot.domain.words import counted
from bot.services.base import Service
from bot.services.spend.reconcile import RECONCILE_HOUR_UTC, Reconciler, drift_percent, signed_usd
from bot.store.leases import last_run, mark_run
from bot.store.models import RequestRecord, RoleGrant

log = logging.getLogger(__name__)

DIGEST_JOB = "digest"
DIGEST_HOUR = 8  # in BUDGET_TZ
TOP = 5


class Digest(Service):

    async def yesterday(self, now: datetime) -> Reply:
        """The digest of the BUDGET_TZ day before ``now``."""
        tz = self.settings.budget_zone
        day = local_day(now, tz) - timedelta(days=1)
        start, end = midnight(day, tz), midnight(day + timedelta(days=1), tz)
        within = (RequestRecord.created_at >= start, RequestRecord.created_at < end)
        admitted = RequestRecord.admitted.is_(True)
        cost = func.coalesce(func.sum(RequestRecord.cost_micros), 0)
        async with self.reads() as session:
            requests, total = (await session.execute(
                select(func.count(), cost).where(*within, admitted))).one()
            refusals = (await session.execute(
                select(RequestRecord.refusal_reason, func.sum(RequestRecord.requests))
                .where(*within, RequestRecord.admitted.is_(False)).group_by(RequestRecord.refusal_reason)
                .order_by(func.sum(RequestRecord.requests).desc()))).all()
            ran_out = list(await session.scalars(
                select(RequestRecord.slack_user_id).where(
                    *within, RequestRecord.refusal_reason == RefusalReason.BUDGET_EXHAUSTED.value)
                .group_by(RequestRecord.slack_user_id).order_by(RequestRecord.slack_user_id)))
            spenders = (await session.execute(
                select(RequestRecord.slack_user_id, cost).where(*within, admitted)
                .group_by(RequestRecord.slack_user_id).order_by(cost.desc()).limit(TOP))).all()
            models = (await session.execute(
                select(RequestRecord.model, cost, func.count()).where(*within, admitted)
                .group_by(RequestRecord.model).order_by(cost.desc()).limit(TOP))).all()
        name = self.settings.models.alias_of
        lines = [f"{counted(int(requests), 'answer')} · {format_usd(int(total))} estimated"]
        if ran_out:
            lines.append(f"Used up a budget: {', '.join(mention(user) for user in ran_out[:40])}"
                         + (f" and {len(ran_out) - 40} more" if len(ran_out) > 40 else ""))
        if refusals:
            lines.append("Refusals: " + ", ".join(f"{reason or 'unknown'} {int(count):,}"
                                                 for reason, count in refusals))
        if spenders:
            lines.append("Top spenders: " + ", ".join(f"{mention(user)} {format_usd(int(spent))}"
                                                     for user, spent in spenders if spent))
        if models:
            lines.append("Top models: " + ", ".join(f"{name(model) if model else 'none'} {format_usd(int(spent))} "
                                                   f"({int(n):,})" for model, spent, n in models))
        lines.append(await self._drift_line(now))
        return Reply(f"{icon(Icon.MONEY)} Claude Gate yesterday, {day:%a %-d %b} ({tz.key})", lines=lines)

    async def _drift_line(self, now: datetime) -> str:
        if self.settings.anthropic_admin_key is None:
            return "Drift against Anthropic's bill: not checked (ANTHROPIC_ADMIN_KEY is not set)."
        settled = now - timedelta(hours=RECONCILE_HOUR_UTC)  # the last UTC day whose report has settled
        try:
            result = await Reconciler(db=self.db, settings=self.settings, clock=lambda: settled,
                                      slack=self.slack).compare(1)
        except AdminApiError as exc:
            return f"Drift against Anthropic's bill: not read ({exc.message})"
        ours = sum(pair.ours for pair in result.pairs)
        theirs = sum(pair.theirs for pair in result.pairs)
        return (f"Drift against Anthropic's bill ({result.last:%Y-%m-%d} UTC): {signed_usd(ours - theirs)} "
                f"({drift_percent(ours, theirs):.1f} %)")

    async def run_due(self) -> Reply | None:
        """Post yesterday's digest if it is 08:00 or later in BUDGET_TZ and today's was not posted yet."""
        now = self.clock()
        tz = self.settings.budget_zone
        if now.astimezone(tz).hour < DIGEST_HOUR:
            return None
        async with self.sessions() as session:
            last = await last_run(session, DIGEST_JOB)
        if last is not None and local_day(last, tz) == local_day(now, tz):
            return None
        digest = await self.yesterday(now)
        async with self.sessions.begin() as session:  # marked first: a failed post is not repeated every hour
            await mark_run(session, DIGEST_JOB, now)
            owners = [] if self.settings.admin_alert_channel else list(await session.scalars(
                select(RoleGrant.slack_user_id).where(RoleGrant.role == Role.OWNER.value)))
        if self.settings.admin_alert_channel:
            await self.slack.post(self.settings.admin_alert_channel, digest)
        for owner in owners:
            await self.slack.send_dm(owner, digest)
        log.info("posted the daily digest: %s", unmarked(digest.title))
        return digest
