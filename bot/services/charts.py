"""`/claude-admin usage chart [days=<n>]`: daily cost by role and model as a PNG, sent to the caller's DM.

Rendered with matplotlib's Agg backend (no display, no GUI toolkit), imported only when a chart is asked for: it
costs a second of start-up that no other command should pay.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.pricing import format_usd
from bot.store.models import RequestRecord

MAX_CHART_DAYS = 366
MAX_SERIES = 8  # role · model pairs drawn apiece; the rest are summed as "other"


@dataclass(frozen=True)
class DailyCost:
    days: list[date]
    series: dict[str, list[int]]  # "role · model" → micro-dollars per day

    @property
    def total(self) -> int:
        return sum(sum(values) for values in self.series.values())


async def daily_cost(session: AsyncSession, *, now: datetime, days: int, tz: ZoneInfo) -> DailyCost:
    """Cost per day (in ``tz``) of the last ``days`` days, one series per role and model."""
    first = now.astimezone(tz).date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    rows = await session.execute(
        select(RequestRecord.created_at, RequestRecord.role, RequestRecord.model, RequestRecord.cost_micros)
        .where(RequestRecord.admitted.is_(True), RequestRecord.created_at >= since))
    per_day: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for created_at, role, model, cost in rows:
        per_day[f"{role} · {model}"][created_at.astimezone(tz).date()] += int(cost or 0)
    day_list = [first + timedelta(days=i) for i in range(days)]
    ranked = sorted(per_day, key=lambda name: -sum(per_day[name].values()))
    series = {name: [per_day[name].get(day, 0) for day in day_list] for name in ranked[:MAX_SERIES]}
    if len(ranked) > MAX_SERIES:
        series["other"] = [sum(per_day[name].get(day, 0) for name in ranked[MAX_SERIES:]) for day in day_list]
    return DailyCost(day_list, series)


def render_png(chart: DailyCost, *, title: str) -> bytes:
    """A stacked bar chart of the daily cost, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 5), dpi=100)
    axes = figure.subplots()
    labels = [day.strftime("%d %b") for day in chart.days]
    bottom = [0.0] * len(chart.days)
    for name, values in chart.series.items():
        dollars = [v / 1_000_000 for v in values]
        axes.bar(labels, dollars, bottom=bottom, label=name)
        bottom = [b + d for b, d in zip(bottom, dollars, strict=True)]
    axes.set_title(title)
    axes.set_ylabel("US dollars (estimated)")
    if chart.series:
        axes.legend(fontsize="small", loc="upper left")
    else:
        axes.text(0.5, 0.5, "No spend in this period", ha="center", va="center", transform=axes.transAxes)
    step = max(1, len(labels) // 15)
    axes.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right", fontsize="small")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def chart_comment(chart: DailyCost, days: int) -> str:
    return f"Daily cost by role and model, last {days} day(s): {format_usd(chart.total)} in all."
