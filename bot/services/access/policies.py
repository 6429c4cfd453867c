"""Role policies as stored in the database (read fresh for every request, so edits apply at once)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.budgets import AmountError, parse_usd
from bot.domain.commands import whole_number
from bot.domain.errors import PolicyValueError as PolicyValueError
from bot.domain.keys import WORKSPACE
from bot.domain.marks import code
from bot.domain.models import ModelCatalog
from bot.domain.policy import DEFAULT_POLICIES, RolePolicy
from bot.domain.pricing import format_usd
from bot.domain.roles import Role
from bot.domain.words import counted
from bot.services.data.audit import add_audit
from bot.store.clock import Clock
from bot.store.models import RolePolicyRow


def policy_from_row(row: RolePolicyRow) -> RolePolicy:
    return RolePolicy(
        role=Role(row.role),
        models=tuple(row.models or ()),
        max_tokens=row.max_tokens,
        rpm_limit=row.rpm_limit,
        daily_token_budget=row.daily_token_budget,
        workspace=row.workspace,
        attachments=bool(row.attachments),
        daily_usd_micros=row.daily_usd_micros,
        monthly_usd_micros=row.monthly_usd_micros,
        schedules=row.schedules,
    )


async def load_policy(session: AsyncSession, role: Role) -> RolePolicy:
    row = await session.get(RolePolicyRow, role.value)
    return policy_from_row(row) if row else DEFAULT_POLICIES[role]


async def all_policies(session: AsyncSession) -> dict[Role, RolePolicy]:
    rows = await session.scalars(select(RolePolicyRow))
    stored = {Role(row.role): policy_from_row(row) for row in rows}
    return {role: stored.get(role, DEFAULT_POLICIES[role]) for role in Role}


MAX_TOKENS_CEILING = 200_000
RPM_CEILING = 10_000
SCHEDULES_CEILING = 1_000
_NONE_WORDS = ("none", "off", "unlimited", "-")
USD_FIELDS = {"daily_usd": "daily_usd_micros", "monthly_usd": "monthly_usd_micros"}  # policy field → column


def parse_policy_value(field: str, text: str, catalog: ModelCatalog) -> object:
    """The typed value of ``policy set <role> <field> <text>``, or PolicyValueError."""
    text = text.strip()
    if field == "models":
        if text.lower() in _NONE_WORDS:
            return []
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if catalog.resolve(name) is None]
        if unknown or not names:
            known = ", ".join(f"{code(alias)} ({model})" for alias, model in catalog.aliases.items())
            bad = (unknown or [text])[0][:40]
            raise PolicyValueError(f"Unknown model {code(bad)}. Known: {known}, or a full model ID.")
        return [name.lower() for name in dict.fromkeys(names)]
    if field == "workspace":
        if not WORKSPACE.fullmatch(text):
            raise PolicyValueError(f"{code(text[:40])} is not a workspace name (letters, digits, . _ -).")
        return text
    if field == "attachments":
        if text.lower() in ("on", "true", "yes"):
            return True
        if text.lower() in ("off", "false", "no"):
            return False
        raise PolicyValueError(f"attachments must be {code('on')} or {code('off')}.")
    if field in USD_FIELDS:
        try:
            return parse_usd(text)
        except AmountError as exc:
            raise PolicyValueError(f"{field}: {exc}") from None
    if field == "daily_token_budget" and text.lower() in _NONE_WORDS:
        return None
    ceiling = {"max_tokens": MAX_TOKENS_CEILING, "rpm_limit": RPM_CEILING, "schedules": SCHEDULES_CEILING}.get(
        field, 10**12)
    floor = 0 if field in ("rpm_limit", "schedules") else 1
    number = whole_number(text, floor, ceiling)
    if number is None:
        raise PolicyValueError(f"{field} must be a whole number from {floor} to {ceiling:,}"
                               + (f" (or {code('none')})." if field == "daily_token_budget" else "."))
    return number


async def update_policy(session: AsyncSession, clock: Clock, *, actor_id: str, role: Role, field: str,
                        value: object) -> tuple[object, object]:
    """Set one field of a role's policy, audited; returns (old, new)."""
    row = await session.get(RolePolicyRow, role.value, with_for_update=True)
    if row is None:
        default = DEFAULT_POLICIES[role]
        row = RolePolicyRow(role=role.value, models=list(default.models), max_tokens=default.max_tokens,
                            rpm_limit=default.rpm_limit, daily_token_budget=default.daily_token_budget,
                            workspace=default.workspace, attachments=default.attachments,
                            schedules=default.schedules)
        session.add(row)
    column = USD_FIELDS.get(field, field)
    old = getattr(row, column)
    setattr(row, column, value)
    row.updated_by, row.updated_at = actor_id, clock()
    add_audit(session, at=clock(), actor=actor_id, action="policy.set", target=role.value, field=field,
              old=old, new=value)
    return old, value


def describe_policy(policy: RolePolicy, catalog_aliases: dict[str, str]) -> str:
    if not policy.allows_chat:
        return "no chat" + (f" · {counted(policy.schedules, 'schedule')}" if policy.schedules else "")
    models = ", ".join(policy.models)
    budget = f"{policy.daily_token_budget:,} tokens/day" if policy.daily_token_budget else "no daily budget"
    files = "" if policy.attachments else " · no files"
    usd = [f"{format_usd(limit)}/{period} each" for limit, period in
           ((policy.daily_usd_micros, "day"), (policy.monthly_usd_micros, "month")) if limit is not None]
    return (f"{models} · max_tokens {policy.max_tokens:,} · {policy.rpm_limit} req/min · {budget}"
            + "".join(f" · {line}" for line in usd) + f" · workspace {code(policy.workspace)}{files}"
            + f" · {counted(policy.schedules, 'schedule')}")
