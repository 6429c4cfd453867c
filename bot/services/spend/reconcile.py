"""Our recorded cost beside Anthropic's own, per API key × model × UTC day (docs/spend.md#reconciliation).

Anthropic's cost report (the Admin API's analytics cost endpoint, through bot/services/keys/admin_api.py) is
grouped by the API key that authenticated the requests and by model, in UTC days; ours is the request records'
cost on the same days, by key label mapped to its Anthropic ID (`keys add … anthropic_id=` or `keys sync`). A key
the gate has no Anthropic ID for is shown as unmatched; spend on Anthropic keys the gate never used is shown as
spend outside the gate. A day whose drift passes RECONCILE_DRIFT_PERCENT is flagged (and alerted by the daily
job, bot/scheduler.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.errors import AdminApiError
from bot.domain.marks import Icon, code, icon
from bot.domain.pricing import format_usd, undated
from bot.domain.replies import Reply
from bot.domain.words import counted
from bot.services.base import Service
from bot.services.keys.admin_api import AnthropicAdmin, ReportedCost
from bot.store.leases import last_run, mark_run
from bot.store.models import ApiKey, RequestRecord

log = logging.getLogger(__name__)

RECONCILE_JOB = "reconcile"
RECONCILE_HOUR_UTC = 6  # the daily run waits for Anthropic's report of yesterday to settle
NO_ADMIN_KEY = ("Reconciliation needs ANTHROPIC_ADMIN_KEY (an Admin API key, which can read the cost report): set "
                "it to compare our cost with Anthropic's.")


@dataclass(frozen=True)
class Pair:
    """One key × model × day, both sides in micro-dollars (0 where a side has nothing)."""

    day: date
    key: str  # our label
    model: str
    ours: int
    theirs: int

    @property
    def drift(self) -> int:
        return self.ours - self.theirs


@dataclass
class Reconciliation:
    first: date
    last: date
    pairs: list[Pair] = field(default_factory=list)
    unmatched: dict[str, int] = field(default_factory=dict)  # our label without an Anthropic ID → our cost
    outside: dict[str, int] = field(default_factory=dict)  # Anthropic key ID the gate never used → its cost

    def day_totals(self) -> dict[date, tuple[int, int]]:
        """Each day's (ours, theirs) over the matched keys."""
        totals: dict[date, tuple[int, int]] = {}
        for pair in self.pairs:
            ours, theirs = totals.get(pair.day, (0, 0))
            totals[pair.day] = (ours + pair.ours, theirs + pair.theirs)
        return dict(sorted(totals.items()))

    def drifting_days(self, percent: float) -> list[tuple[date, int, float]]:
        """(day, drift in micro-dollars, drift in %) of each day past ``percent`` (a day Anthropic billed nothing
        for while we recorded cost counts as 100 %)."""
        days = []
        for day, (ours, theirs) in self.day_totals().items():
            share = drift_percent(ours, theirs)
            if share > percent:
                days.append((day, ours - theirs, share))
        return days


def drift_percent(ours: int, theirs: int) -> float:
    if theirs == 0:
        return 0.0 if ours == 0 else 100.0
    return abs(ours - theirs) * 100 / theirs


def signed_usd(micros: int) -> str:
    """A drift with its sign: ``+$0.01`` (we recorded more), ``-$0.01`` (Anthropic billed more), ``$0.00``."""
    return ("-" if micros < 0 else "+" if micros > 0 else "") + format_usd(abs(micros))


def complete_days(now: datetime, days: int) -> tuple[date, date]:
    """The last ``days`` complete UTC days before ``now`` (Anthropic's buckets are UTC days)."""
    last = now.astimezone(UTC).date() - timedelta(days=1)
    return last - timedelta(days=days - 1), last


async def our_costs(session: AsyncSession, first: date, last: date) -> dict[tuple[date, str, str], int]:
    """(day, key label, model) → our recorded cost: one grouped query per UTC day (an index range on
    created_at)."""
    costs: dict[tuple[date, str, str], int] = {}
    day = first
    while day <= last:
        start = datetime.combine(day, time(), tzinfo=UTC)
        rows = await session.execute(
            select(RequestRecord.key_label, RequestRecord.model, func.coalesce(func.sum(RequestRecord.cost_micros), 0))
            .where(RequestRecord.admitted.is_(True), RequestRecord.created_at >= start,
                   RequestRecord.created_at < start + timedelta(days=1))
            .group_by(RequestRecord.key_label, RequestRecord.model))
        for label, model, cost in rows:
            if cost and label and model:
                costs[(day, label, model)] = int(cost)
        day += timedelta(days=1)
    return costs


async def anthropic_ids(session: AsyncSession) -> dict[str, str | None]:
    """Every registered key's label → its Anthropic ID (None: not matched yet)."""
    return {label: key_id for label, key_id in await session.execute(select(ApiKey.label, ApiKey.anthropic_key_id))}


def _summed(costs: dict[tuple[date, str, str], int]) -> dict[tuple[date, str, str], int]:
    """``costs`` with each model's dated and undated IDs together (Anthropic's report names models undated)."""
    summed: dict[tuple[date, str, str], int] = {}
    for (day, label, model), cost in costs.items():
        slot = (day, label, undated(model))
        summed[slot] = summed.get(slot, 0) + cost
    return summed


def reconcile(first: date, last: date, ours: dict[tuple[date, str, str], int], ids: dict[str, str | None],
              theirs: Iterable[ReportedCost]) -> Reconciliation:
    """Pair our cost with Anthropic's by key × model × day."""
    result = Reconciliation(first, last)
    label_of = {key_id: label for label, key_id in ids.items() if key_id}
    reported: dict[tuple[date, str, str], int] = {}
    for row in theirs:
        if not first <= row.day <= last:
            continue
        if row.api_key_id in label_of:
            slot = (row.day, label_of[row.api_key_id], undated(row.model or "?"))
            reported[slot] = reported.get(slot, 0) + row.micros
        elif row.micros:
            outside = row.api_key_id or "no API key"
            result.outside[outside] = result.outside.get(outside, 0) + row.micros
    ours = _summed(ours)
    for (_day, label, _model), cost in ours.items():
        if ids.get(label) is None:
            result.unmatched[label] = result.unmatched.get(label, 0) + cost
    slots = {slot for slot in ours if ids.get(slot[1])} | set(reported)
    result.pairs = [Pair(day, label, model, ours.get((day, label, model), 0), reported.get((day, label, model), 0))
                    for day, label, model in sorted(slots)]
    return result


def reconciliation_reply(result: Reconciliation, *, alert_percent: float,
                         name: Callable[[str], str] = str) -> Reply:
    """The report: a line per key × model × day, each day's total and drift, unmatched keys, spend outside."""
    lines = []
    for day, (ours, theirs) in result.day_totals().items():
        share = drift_percent(ours, theirs)
        flag = f" · past {alert_percent:g} %" if share > alert_percent else ""
        lines.append(f"{day:%Y-%m-%d}: ours {format_usd(ours)} · Anthropic {format_usd(theirs)} · drift "
                     f"{signed_usd(ours - theirs)} ({share:.1f} %){flag}")
        for pair in (p for p in result.pairs if p.day == day):
            lines.append(f"  key {code(pair.key)} · {name(pair.model)}: ours {format_usd(pair.ours)} · Anthropic "
                         f"{format_usd(pair.theirs)} · drift {signed_usd(pair.drift)} "
                         f"({drift_percent(pair.ours, pair.theirs):.1f} %)")
    for label, cost in sorted(result.unmatched.items()):
        lines.append(f"key {code(label)}: {format_usd(cost)} recorded, not matched to an Anthropic key (give it "
                     f"anthropic_id=… with keys add, or run keys sync)")
    for key_id, cost in sorted(result.outside.items()):
        lines.append(f"outside the gate: {format_usd(cost)} on {code(key_id)}, a key the gate does not know (never "
                     "used by it, or registered without its Anthropic ID)")
    span = f"{result.first:%Y-%m-%d} to {result.last:%Y-%m-%d}" if result.first != result.last else \
        f"{result.first:%Y-%m-%d}"
    return Reply(f"Our cost beside Anthropic's, {span} (UTC days)",
                 lines=lines or ["No cost on either side in these days."],
                 footer=f"Anthropic's cost report by API key and model; {counted(len(result.day_totals()), 'day')} "
                        f"with matched spend; a day drifting more than {alert_percent:g} % is alerted "
                        "(RECONCILE_DRIFT_PERCENT).")


class Reconciler(Service):
    """`usage reconcile` and the leader's daily run (bot/scheduler.py)."""

    async def compare(self, days: int) -> Reconciliation:
        """The last ``days`` complete UTC days, ours beside Anthropic's. Raises AdminApiError."""
        admin = AnthropicAdmin.from_settings(self.settings)
        if admin is None:
            raise AdminApiError(NO_ADMIN_KEY)
        first, last = complete_days(self.clock(), days)
        async with self.reads() as session:
            ours = await our_costs(session, first, last)
            ids = await anthropic_ids(session)
        async with admin:
            theirs = await admin.daily_costs(first, last)
        return reconcile(first, last, ours, ids, theirs)

    async def report(self, days: int) -> Reply:
        try:
            result = await self.compare(days)
        except AdminApiError as exc:
            return Reply.error(exc.message)
        return reconciliation_reply(result, alert_percent=self.settings.reconcile_drift_percent,
                                    name=self.settings.models.alias_of)

    async def daily(self) -> Reconciliation | None:
        """Once a day after RECONCILE_HOUR_UTC: yesterday, and an alert to ADMIN_ALERT_CHANNEL for a day past
        RECONCILE_DRIFT_PERCENT. Nothing without ANTHROPIC_ADMIN_KEY. A failure is logged and tried next hour."""
        now = self.clock()
        if self.settings.anthropic_admin_key is None or now.astimezone(UTC).hour < RECONCILE_HOUR_UTC:
            return None
        async with self.sessions() as session:
            last = await last_run(session, RECONCILE_JOB)
        if last is not None and last.astimezone(UTC).date() == now.astimezone(UTC).date():
            return None
        try:
            result = await self.compare(1)
        except AdminApiError as exc:
            log.warning("the daily reconciliation could not read Anthropic's cost report: %s", exc)
            return None
        async with self.sessions.begin() as session:
            await mark_run(session, RECONCILE_JOB, now)
        percent = self.settings.reconcile_drift_percent
        for day, drift, share in result.drifting_days(percent):
            text = (f"{icon(Icon.WARNING)} Our recorded cost of {day:%Y-%m-%d} differs from Anthropic's by "
                    f"{signed_usd(drift)} ({share:.1f} %, past RECONCILE_DRIFT_PERCENT={percent:g}). "
                    f"{code('/claude-admin usage reconcile')} shows each key and model.")
            log.warning("reconciliation: %s drifts by %s (%.1f %%)", day, signed_usd(drift), share)
            if self.settings.admin_alert_channel:
                await self.slack.post(self.settings.admin_alert_channel, text)
        return result
