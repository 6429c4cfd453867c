"""`/claude-admin usage chart [days=<n>]` (docs/admin.md): daily cost by role and model as a PNG, in the caller's DM.

Days are days of the budget calendar (BUDGET_TZ), the same as the daily budgets'. The cost of a day is what its
admitted requests cost (a request still running counts at its reservation, as the budgets count it).

The PNG is drawn with matplotlib's Agg canvas (no display, no GUI toolkit). matplotlib is imported only when a chart
is drawn, in a worker thread: its import and a drawing take a second of CPU that start-up, the command line and the
event loop (other people's acknowledgements and answers) should not wait for.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.days import local_day, midnight
from bot.store.models import RequestRecord

if TYPE_CHECKING:
    from collections.abc import Callable


MAX_SERIES = 8  # role · model pairs drawn apiece, the costliest first; the rest are summed as "other"
WIDTH_PX, HEIGHT_PX, DPI = 1200, 560, 100
_DRAWING = threading.Lock()  # matplotlib's global state (font cache, rcParams) is not thread-safe: one at a time


@dataclass(frozen=True)
class DailyCost:
    days: list[date]  # on the calendar of ``zone``, oldest first, today last
    series: dict[str, list[int]]  # "role · model" → micro-dollars per day, the costliest series first
    zone: str

    @property
    def total(self) -> int:
        return sum(sum(values) for values in self.series.values())


async def daily_cost(session: AsyncSession, *, now: datetime, days: int, tz: tzinfo,
                     model_name: Callable[[str], str] = str) -> DailyCost:
    """The cost of each of the last ``days`` days (today included) in ``tz``, one series per role and model.

    One grouped query per day, bounded by that day's midnights in ``tz`` (an index range on created_at): exact in
    any zone, whatever its offset or DST, on SQLite and PostgreSQL alike.
    """
    today = local_day(now, tz)
    day_list = [today - timedelta(days=days - 1 - i) for i in range(days)]
    per_series: dict[str, dict[date, int]] = {}
    for day in day_list:
        rows = await session.execute(
            select(RequestRecord.role, RequestRecord.model, func.coalesce(func.sum(RequestRecord.cost_micros), 0))
            .where(RequestRecord.admitted.is_(True), RequestRecord.created_at >= midnight(day, tz),
                   RequestRecord.created_at < midnight(day + timedelta(days=1), tz))
            .group_by(RequestRecord.role, RequestRecord.model))
        for role, model, cost in rows:
            if cost:
                name = f"{role} · {model_name(model) if model else 'no model'}"
                by_day = per_series.setdefault(name, {})
                by_day[day] = by_day.get(day, 0) + int(cost)
    ranked = sorted(per_series, key=lambda name: (-sum(per_series[name].values()), name))
    series = {name: [per_series[name].get(day, 0) for day in day_list] for name in ranked[:MAX_SERIES]}
    if len(ranked) > MAX_SERIES:
        series["other"] = [sum(per_series[name].get(day, 0) for name in ranked[MAX_SERIES:]) for day in day_list]
    return DailyCost(day_list, series, getattr(tz, "key", str(tz)))


def render_png(chart: DailyCost, *, title: str) -> bytes:
    """A stacked bar chart of the daily cost, WIDTH_PX × HEIGHT_PX, as PNG bytes. Blocking: run it in a thread."""
    with _DRAWING:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter

        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        FigureCanvasAgg(figure)  # the Agg canvas: rendering without any display
        axes = figure.subplots()
        positions = list(range(len(chart.days)))
        bottom = [0.0] * len(chart.days)
        for name, values in chart.series.items():
            dollars = [value / 1_000_000 for value in values]
            axes.bar(positions, dollars, bottom=bottom, label=name, width=0.8)
            bottom = [b + d for b, d in zip(bottom, dollars, strict=True)]
        axes.set_title(title, fontsize="medium")
        axes.set_ylabel("US dollars (estimated)")
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"${value:,.2f}"))
        axes.legend(fontsize="small", loc="upper left")
        step = max(1, len(positions) // 15)
        axes.set_xticks(positions[::step], [day.strftime("%d %b") for day in chart.days[::step]], rotation=45,
                        ha="right", fontsize="small")
        axes.set_xlim(-0.6, len(positions) - 0.4)
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI)
        return out.getvalue()


def period_text(chart: DailyCost) -> str:
    first, last = chart.days[0], chart.days[-1]
    return f"{first:%-d %b %Y} to {last:%-d %b %Y} ({chart.zone})"
