"""The admin overview of the App Home: who has which role, today's traffic, keys due for rotation."""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.access_requests import REQUEST_LIFETIME, RequestStatus
from bot.domain.days import day_start
from bot.domain.keys import KeyStatus
from bot.domain.marks import code
from bot.domain.pricing import format_usd
from bot.domain.replies import Reply
from bot.domain.words import counted
from bot.services.access.groups import list_mappings
from bot.services.channels.channel_settings import configured_channels, summary_line
from bot.services.keys.registry import KeyListing
from bot.services.spend.report import budget_lines
from bot.services.spend.usage import usage_summary
from bot.store.models import AccessRequest, RoleGrant, TimedGrant


async def admin_overview(session: AsyncSession, *, now: datetime, tz: tzinfo, keys: KeyListing) -> Reply:
    counts = dict((await session.execute(select(RoleGrant.role, func.count()).group_by(RoleGrant.role))).all())
    roles = " · ".join(f"{role} {count}" for role, count in sorted(counts.items())) or "no explicit grants"
    groups = await list_mappings(session)
    today = await _today(session, now, tz)
    usable = [k for k in keys.keys if k.usable]
    due = sorted((k for k in usable if k.rotation.due_within(keys.remind_before_days)),
                 key=lambda k: k.rotation.rotate_by)
    fields = [
        ("Explicit roles", roles),
        ("Mapped groups", ", ".join(f"@{m.handle or m.usergroup_id} → {m.role}" for m, _ in groups) or "none"),
        ("Today", today),
        ("Keys due for rotation", ", ".join(f"{code(k.label)} {k.rotation.phrase}" for k in due) or "none"),
    ]
    timed = await session.scalar(select(func.count()).where(TimedGrant.expires_at > now)) or 0
    if timed:
        fields.append(("Time-bound roles", f"{timed} ({code('/claude-admin users')} shows until when)"))
    pending = await session.scalar(select(func.count()).where(
        AccessRequest.status == RequestStatus.PENDING.value, AccessRequest.created_at > now - REQUEST_LIFETIME)) or 0
    if pending:
        fields.append(("Access requests waiting", f"{pending} ({code('/claude-admin requests')})"))
    channels = await configured_channels(session)
    shown = [summary_line(channel) for channel in channels[:10]]
    if len(channels) > 10:
        shown.append(f"…and {len(channels) - 10} more: {code('/claude-admin channels')}")
    fields.append(("Channels with their own settings", "\n".join(shown) or "none"))
    failing = [k.label for k in usable if k.status == KeyStatus.FAILING]
    if failing:
        fields.append(("Failing keys", ", ".join(code(label) for label in failing)))
    return Reply("Overview (admins and owners)", fields=fields)


async def usage_today(session: AsyncSession, *, now: datetime, tz: tzinfo) -> Reply:
    """What a `billing` user sees on the App Home: today's traffic and cost, nothing of roles or keys."""
    return Reply("Usage today", fields=[("Today", await _today(session, now, tz))],
                 footer=f"{code('/claude-admin usage')} for more. Costs are estimates.")


async def _today(session: AsyncSession, now: datetime, tz: tzinfo) -> str:
    """Today on the budget calendar (BUDGET_TZ), as the daily budgets count it."""
    today = await usage_summary(session, since=day_start(now, tz))
    return f"{counted(today.requests, 'request')} · {today.refused} refused · {format_usd(today.cost_micros)} estimated"


BAR_CELLS = 10


def budget_bar(percent: int) -> str:
    """``▓▓▓▓▓░░░░░`` — a budget's use in ten cells (a full bar at 100 % and above)."""
    filled = min(BAR_CELLS, max(0, percent) * BAR_CELLS // 100)
    return "▓" * filled + "░" * (BAR_CELLS - filled)


async def budget_overview(session: AsyncSession, settings: Settings, *, now: datetime) -> Reply | None:
    """Each pooled and personal-override budget as a bar with its spend this period (App Home of admins, owners
    and billing); a role's per-person budgets as a line each. None when no budget is set."""
    lines = []
    for line in await budget_lines(session, settings, now):
        if line.percent is None:
            lines.append(f"{line.text()}")
        else:
            lines.append(f"{code(budget_bar(line.percent))} {line.text()}")
    if not lines:
        return None
    return Reply("Budgets", lines=lines, footer=f"Periods follow {settings.budget_tz}. {code('/claude-admin budget')} "
                 "for the same in a message.")
