"""Budget alerts (docs/spend.md): at BUDGET_ALERT_PERCENT and at 100 % of a USD budget, once per budget, period and
level across every process (a claim row in ``budget_alerts``). Pooled, org and per-person override budgets go to
ADMIN_ALERT_CHANNEL (unset: a DM to each owner); a person's own budget also DMs that person. Never raises: an
alert must not break an answer."""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.budgets import Limit, period_start, resets_in
from bot.domain.marks import Icon, code, icon
from bot.domain.mentions import mention
from bot.domain.pricing import format_usd
from bot.domain.roles import Role
from bot.services.base import Service
from bot.services.conversation.access import access_snapshot
from bot.services.conversation.observer import QuietObserver
from bot.services.spend.counters import budgets_for, counter_keys, limits_for, read_counters
from bot.store.db import dialect_of
from bot.store.models import BudgetAlert, RoleGrant

log = logging.getLogger(__name__)


class BudgetAlerts(Service, QuietObserver):

    async def spend_changed(self, user_id: str, exhausted: tuple[str, str] | None = None) -> None:
        """After a request of ``user_id`` ended, or was refused by the budget ``exhausted`` (scope, period): alert
        each USD budget of theirs that crossed a level, once."""
        try:
            for limit, spent, level, starts in await self._claim(user_id, exhausted):
                await self._send(user_id, limit, spent, level, starts)
        except Exception:
            log.exception("checking the budget alerts of %s failed", user_id)

    async def _claim(self, user_id: str, exhausted: tuple[str, str] | None) -> list[tuple[Limit, int, int, date]]:
        now = self.clock()
        tz = self.settings.budget_zone
        levels = sorted({self.settings.budget_alert_percent, 100})
        due = []
        async with self.sessions.begin() as session:
            policy = (await access_snapshot(session, user_id, self.settings.default_role, now)).policy
            limits = [limit for limit in limits_for(user_id, policy, await budgets_for(session, user_id))
                      if not limit.tokens]
            if not limits:
                return []
            counters = await read_counters(session, counter_keys({limit.scope for limit in limits}, now, tz))
            for limit in limits:
                starts = period_start(now, limit.period, tz)
                spent = counters[(limit.scope, limit.period.value, starts)][0]
                percent = 100 if limit.limit <= 0 else spent * 100 // limit.limit
                if exhausted == (limit.scope, limit.period.value):  # no request fits any more: it is used up
                    percent = 100
                reached = [level for level in levels if percent >= level]
                if reached and await self._first(session, limit, starts, reached[-1], now):
                    due.append((limit, spent, reached[-1], starts))
        return due

    async def _first(self, session: AsyncSession, limit: Limit, starts: date, level: int, now: datetime) -> bool:
        """Claim (scope, period, first day, level); lower levels are claimed with it (one message, not two)."""
        insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
        claimed = False
        for each in sorted({self.settings.budget_alert_percent, 100}):
            if each > level:
                continue
            inserted = (await session.execute(insert(BudgetAlert).values(
                scope=limit.scope, period=limit.period.value, starts=starts, percent=each, sent_at=now,
            ).on_conflict_do_nothing().returning(BudgetAlert.percent))).first()
            claimed = claimed or (each == level and inserted is not None)
        return claimed

    async def _send(self, user_id: str, limit: Limit, spent: int, level: int, starts: object) -> None:
        now = self.clock()
        tz = self.settings.budget_zone
        resets = resets_in(now, starts, limit.period, tz)  # type: ignore[arg-type]
        used = f"{format_usd(spent)} of {format_usd(limit.limit)}"
        state = "is used up" if level >= 100 else f"is {level}% used"
        if limit.source in ("role", "override"):
            await self.slack.send_dm(user_id, f"{icon(Icon.MONEY)} Your {limit.period.adjective} Claude budget "
                                         f"{state}: {used}. It resets at {resets}.")
        if limit.source == "role":
            return
        subject = (f"{mention(user_id)}'s own {limit.period.adjective} budget" if limit.source == "override"
                   else limit.label)
        text = (f"{icon(Icon.MONEY)} {subject[0].upper()}{subject[1:]} for Claude {state}: {used}. It resets at "
                f"{resets}. {code('/claude-admin budget')} shows every budget.")
        channel = self.settings.admin_alert_channel
        if channel:
            await self.slack.post(channel, text)
            return
        async with self.sessions() as session:
            owners = list(await session.scalars(select(RoleGrant.slack_user_id)
                                                .where(RoleGrant.role == Role.OWNER.value)))
        for owner_id in owners:
            await self.slack.send_dm(owner_id, text)
