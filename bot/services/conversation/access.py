"""What the gate knows about a user, read in one statement: effective role and its source, the role's policy,
the preferred model, the key the role's workspace would use, and the settings of the channel asked in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Select, String, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.domain.channels import ChannelSettings, is_channel
from bot.domain.grants import until_text
from bot.domain.policy import DEFAULT_POLICIES, RolePolicy
from bot.domain.roles import Role
from bot.services.keys.choice import KeyChoice, key_preference, usable_key
from bot.store.models import (
    ApiKey,
    ChannelSetting,
    GroupMember,
    GroupRoleMapping,
    RoleGrant,
    RolePolicyRow,
    TimedGrant,
    UserPreference,
)

_SOURCE_PREFERENCE = {"explicit": 2, "group": 1, "default": 0}


@dataclass(frozen=True)
class EffectiveRole:
    role: Role
    source: str  # "explicit", "group" or "default"
    group_handle: str | None = None  # for source "group": the group that gives the role
    expires_at: datetime | None = None  # for a time-bound explicit grant: when it ends

    @property
    def source_text(self) -> str:
        if self.source == "group":
            return f"user group @{self.group_handle}" if self.group_handle else "a user group"
        if self.source == "explicit" and self.expires_at is not None:
            return f"a time-bound grant until {until_text(self.expires_at)}"
        return {"explicit": "an explicit grant", "default": "the default role"}[self.source]


@dataclass(frozen=True)
class AccessSnapshot:
    role: EffectiveRole
    policy: RolePolicy
    preferred_model: str | None
    key: KeyChoice | None  # the newest usable key of the policy's workspace (its secret may still be unset)
    policies: dict[Role, RolePolicy] = field(default_factory=dict)  # every role's policy, read in the same statement
    channel: ChannelSettings | None = None  # the settings of the channel asked in, when it has any


def _access_statement() -> Select:  # type: ignore[type-arg]
    """One row per role policy, each saying whether this user holds that role, explicitly or through a group.

    Built once (building a statement costs more than running it); the user is the bind parameter ``user_id``, the
    channel asked in ``channel_id`` (NULL for a DM or a terminal: then no channel row joins).
    """
    user_id = bindparam("user_id", type_=String())
    now = bindparam("now", type_=TimedGrant.expires_at.type)
    policy = RolePolicyRow.__table__.c
    granted = select(RoleGrant.role).where(RoleGrant.slack_user_id == user_id).scalar_subquery()
    # A time-bound grant counts only while it has not expired, whether or not the job that ends it has run yet
    timed = TimedGrant.__table__.alias("timed")
    timed_role = select(timed.c.role).where(timed.c.slack_user_id == user_id, timed.c.expires_at > now)
    timed_until = select(timed.c.expires_at).where(timed.c.slack_user_id == user_id, timed.c.expires_at > now)
    preferred = (select(UserPreference.preferred_model).where(UserPreference.slack_user_id == user_id)
                 .scalar_subquery())
    group = (select(func.coalesce(GroupRoleMapping.handle, GroupRoleMapping.usergroup_id))
             .join(GroupMember, GroupMember.usergroup_id == GroupRoleMapping.usergroup_id)
             .where(GroupMember.slack_user_id == user_id, GroupRoleMapping.role == policy.role)
             .limit(1).scalar_subquery())
    # The key the policy's workspace would use (the one rule of bot/services/keys/choice.py), looked up once per
    # policy and joined for its columns; the gate falls back to active_key when its variable is unset here
    chosen_id = (select(ApiKey.id)
                 .where(ApiKey.workspace == policy.workspace, usable_key())
                 .order_by(*key_preference()).limit(1)
                 .correlate(RolePolicyRow.__table__).scalar_subquery())
    chosen = ApiKey.__table__.alias("chosen_key")
    channel = ChannelSetting.__table__.c
    return (select(policy.role, policy.models, policy.max_tokens, policy.rpm_limit, policy.daily_token_budget,
                   policy.workspace, policy.attachments, policy.daily_usd_micros, policy.monthly_usd_micros,
                   policy.schedules,
                   granted.label("granted"), timed_role.scalar_subquery().label("timed"),
                   timed_until.scalar_subquery().label("timed_until"), preferred.label("preferred"),
                   group.label("group"),
                   chosen.c.label.label("key_label"), chosen.c.env_var.label("key_env"),
                   chosen.c.status.label("key_status"), channel.channel_id.label("channel_id"),
                   channel.name.label("channel_name"), channel.enabled.label("channel_enabled"),
                   channel.off_by.label("channel_off_by"), channel.model.label("channel_model"),
                   channel.prompt.label("channel_prompt"), channel.roles.label("channel_roles"))
            .select_from(RolePolicyRow.__table__.outerjoin(chosen, chosen.c.id == chosen_id)
                         .outerjoin(ChannelSetting.__table__, channel.channel_id == bindparam("channel_id"))))


ACCESS_STATEMENT = _access_statement()


async def access_snapshot(session: AsyncSession | AsyncConnection, user_id: str, default_role: Role,
                          now: datetime | None = None, *, channel_id: str | None = None) -> AccessSnapshot:
    """The effective role is the highest of the explicit grants (a time-bound one while ``now`` is before its end,
    and the permanent one), mapped groups and DEFAULT_ROLE.

    On a tie the explicit grant is named as the source (the permanent one before a time-bound one), then a group,
    then the default. ``channel_id``: the channel asked in; its settings come back with the same round trip (DMs
    have none: they follow only the role).
    """
    candidates = [EffectiveRole(default_role, "default")]
    policies: dict[Role, tuple[RolePolicy, KeyChoice | None]] = {}
    preferred = None
    channel: ChannelSettings | None = None
    params = {"user_id": user_id, "now": now or datetime.now(UTC),
              "channel_id": channel_id if is_channel(channel_id) else None}
    for row in (await session.execute(ACCESS_STATEMENT, params)).all():
        role = Role(row.role)
        policy = RolePolicy(role=role, models=tuple(row.models or ()), max_tokens=row.max_tokens,
                            rpm_limit=row.rpm_limit, daily_token_budget=row.daily_token_budget,
                            workspace=row.workspace, attachments=bool(row.attachments),
                            daily_usd_micros=row.daily_usd_micros, monthly_usd_micros=row.monthly_usd_micros,
                            schedules=row.schedules)
        key = KeyChoice(row.key_label, row.key_env, row.key_status) if row.key_label else None
        policies[role] = (policy, key)
        preferred = row.preferred
        if row.channel_id is not None and channel is None:
            channel = ChannelSettings(row.channel_id, row.channel_name, bool(row.channel_enabled), row.channel_off_by,
                                      row.channel_model, row.channel_prompt, channel_roles(row.channel_roles))
        if row.group is not None:
            candidates.append(EffectiveRole(role, "group", row.group))
        if row.granted == row.role:
            candidates.append(EffectiveRole(role, "explicit"))
        if row.timed == row.role:
            candidates.append(EffectiveRole(role, "explicit", expires_at=row.timed_until))
    chosen = max(candidates, key=lambda c: (c.role.rank, _SOURCE_PREFERENCE[c.source], c.expires_at is None))
    policy, key = policies.get(chosen.role, (DEFAULT_POLICIES[chosen.role], None))
    return AccessSnapshot(chosen, policy, preferred, key, {role: p for role, (p, _key) in policies.items()}, channel)


def channel_roles(stored: list[str] | None) -> tuple[Role, ...] | None:
    """The stored role list (None: every role); a name no longer known is dropped, never widened to everyone."""
    if stored is None:
        return None
    return tuple(role for role in (Role.parse(name) for name in stored) if role is not None)


async def effective_role(session: AsyncSession | AsyncConnection, user_id: str, default_role: Role,
                         now: datetime | None = None) -> EffectiveRole:
    return (await access_snapshot(session, user_id, default_role, now)).role
