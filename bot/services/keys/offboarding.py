"""`offboard <user>`: remove the person's role, then deactivate every active Anthropic key they created."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.keys import KeyStatus
from bot.domain.marks import code, strong
from bot.domain.mentions import mention
from bot.domain.replies import Answer
from bot.domain.roles import Role
from bot.domain.words import counted
from bot.services.access.roles import revoke_role
from bot.services.base import Service
from bot.services.data.audit import add_audit
from bot.services.keys.admin_api import AdminApiError, AnthropicAdmin, OrgKey
from bot.services.keys.choice import USABLE_STATUSES, KeyGuard
from bot.services.keys.registry import Step, StepOutcome
from bot.services.ports import SlackCallFailed, SlackPort
from bot.services.schedules.store import erase_schedules_of
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.models import ApiKey, GroupMember, GroupRoleMapping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offboarded(Answer):
    user_id: str
    previous_role: Role | None  # the explicit role removed, if there was one
    email: str | None
    anthropic_user_id: str | None
    steps: list[Step]
    deactivated: list[str]  # "name (id)" of Anthropic keys set inactive
    failed: list[str]  # keys that could not be deactivated, with why
    group_roles: list[str]  # roles still coming from mapped Slack user groups
    registered_keys: list[str]  # keys this person registered in Claude Gate (their secrets are not theirs)


class Offboarding(Service):
    """`offboard <user>`: the role first, then the Anthropic keys they created."""

    async def offboard_user(self, *, actor_id: str, actor_role: Role | None, user_id: str) -> Offboarded:
        """Revoke ``user_id``'s explicit role, then (with ANTHROPIC_ADMIN_KEY) find the Anthropic user with their Slack
        email and deactivate every active key they created. Each step is audited and reported.

        ``actor_role`` is the caller's role (None from the shell). Raises RoleChangeDenied when the caller may not
        change that person's role; nothing is changed then.
        """
        steps: list[Step] = []
        async with self.sessions.begin() as session:
            previous = await revoke_role(session, self.clock, actor_id=actor_id, actor_role=actor_role,
                                         target_id=user_id)
            group_roles = await _group_roles(session, user_id)
            schedules = await erase_schedules_of(session, user_id)
            registered = list(await session.scalars(
                select(ApiKey.label).where(ApiKey.created_by == user_id, ApiKey.env_var.is_not(None),
                                           ApiKey.status.in_(USABLE_STATUSES))))
        steps.append(Step("Role", StepOutcome.DONE, f"explicit role {strong(previous)} removed." if previous
                          else "had no explicit role."))
        email, anthropic_user_id, deactivated, failed = None, None, [], []
        admin = AnthropicAdmin.from_settings(self.settings)
        if admin is None:
            steps.append(Step("Anthropic keys", StepOutcome.SKIPPED,
                              "ANTHROPIC_ADMIN_KEY is not set: deactivate the keys they created in the Console."))
        else:
            email = await _slack_email(self.slack, user_id, steps)
            if email is not None:
                async with admin:
                    anthropic_user_id, keys = await _their_active_keys(admin, email, steps)
                    for key in keys:
                        try:
                            await admin.deactivate_key(key.id)
                            deactivated.append(key)
                        except AdminApiError as exc:
                            failed.append(f"{key.name} ({key.id}): {exc}")
                if anthropic_user_id is not None:
                    steps.append(_keys_step(email, deactivated, failed))
        if schedules:
            steps.append(Step("Scheduled prompts", StepOutcome.DONE,
                              f"{counted(schedules, 'scheduled prompt')} removed, with their prompt text."))
        await _record(self.db, self.clock, actor_id=actor_id, user_id=user_id, previous=previous,
                      anthropic_user_id=anthropic_user_id, deactivated=deactivated, failed=failed,
                      schedules=schedules)
        return Offboarded(user_id=user_id, previous_role=previous, email=email, anthropic_user_id=anthropic_user_id,
                          steps=steps, deactivated=[f"{k.name} ({k.id})" for k in deactivated], failed=failed,
                          group_roles=group_roles, registered_keys=registered)


async def _group_roles(session: AsyncSession, user_id: str) -> list[str]:
    rows = await session.execute(
        select(GroupRoleMapping.handle, GroupRoleMapping.usergroup_id, GroupRoleMapping.role)
        .join(GroupMember, GroupMember.usergroup_id == GroupRoleMapping.usergroup_id)
        .where(GroupMember.slack_user_id == user_id))
    return [f"{strong(role)} from @{handle or group_id}" for handle, group_id, role in rows]


async def _slack_email(slack: SlackPort, user_id: str, steps: list[Step]) -> str | None:
    try:
        email = await slack.email_of(user_id)
    except SlackCallFailed as exc:
        steps.append(Step("Anthropic keys", StepOutcome.FAILED,
                          f"could not read {mention(user_id)}'s Slack profile ({exc.reason}); deactivate their keys "
                          "in the Console."))
        return None
    if not email:
        steps.append(Step("Anthropic keys", StepOutcome.SKIPPED,
                          f"{mention(user_id)}'s Slack profile shows no email (the app needs "
                          f"{code('users:read.email')}); deactivate their keys in the Console."))
        return None
    return str(email)


async def _their_active_keys(admin: AnthropicAdmin, email: str, steps: list[Step]) -> tuple[str | None, list[OrgKey]]:
    try:
        user = await admin.find_user_by_email(email)
        if user is None:
            steps.append(Step("Anthropic keys", StepOutcome.SKIPPED,
                              f"no member of the Anthropic organisation has the email {email}."))
            return None, []
        return user.id, (await admin.list_keys(created_by_user_id=user.id, status=KeyStatus.ACTIVE.value)).keys
    except AdminApiError as exc:
        steps.append(Step("Anthropic keys", StepOutcome.FAILED, f"{exc} Deactivate their keys in the Console."))
        return None, []


def _keys_step(email: str, deactivated: list[OrgKey], failed: list[str]) -> Step:
    if failed:
        return Step("Anthropic keys", StepOutcome.FAILED,
                    f"{len(deactivated)} of {len(deactivated) + len(failed)} active keys created by {email} "
                    f"deactivated; run {code('offboard')} again to retry the others.")
    if not deactivated:
        return Step("Anthropic keys", StepOutcome.DONE, f"{email} had no active keys.")
    names = ", ".join(code(key.name) for key in deactivated)
    return Step("Anthropic keys", StepOutcome.DONE,
                f"deactivated {counted(len(deactivated), 'key')} created by {email}: {names}.")


async def _record(db: Database, clock: Clock, *, actor_id: str, user_id: str,
                  previous: Role | None, anthropic_user_id: str | None, deactivated: list[OrgKey],
                  failed: list[str], schedules: int = 0) -> None:
    """Audit the offboarding; keys of theirs that Claude Gate used are revoked locally too (Anthropic refuses them),
    under the same key locks as `keys revoke` (KeyGuard), so no call starts with them once this is acknowledged."""
    now = clock()
    async with db.sessions() as session:
        labels = list(await session.scalars(select(ApiKey.label).where(
            ApiKey.anthropic_key_id.in_([key.id for key in deactivated])))) if deactivated else []
    guard = KeyGuard(db.engine)
    async with AsyncExitStack() as locks:
        for label in sorted(labels):
            await locks.enter_async_context(guard.revoking(label))
        await _record_locked(db.sessions, now, actor_id=actor_id, user_id=user_id, previous=previous,
                             anthropic_user_id=anthropic_user_id, deactivated=deactivated, failed=failed,
                             schedules=schedules)


async def _record_locked(sessions: async_sessionmaker[AsyncSession], now: datetime, *, actor_id: str, user_id: str,
                         previous: Role | None, anthropic_user_id: str | None, deactivated: list[OrgKey],
                         failed: list[str], schedules: int = 0) -> None:
    async with sessions.begin() as session:
        for key in deactivated:
            row = await session.scalar(select(ApiKey).where(ApiKey.anthropic_key_id == key.id).with_for_update())
            if row is not None:
                row.anthropic_status = KeyStatus.INACTIVE.value
                if row.status in USABLE_STATUSES and row.env_var is not None:
                    row.status, row.revoked_by, row.revoked_at = KeyStatus.REVOKED.value, actor_id, now
                elif row.env_var is None:
                    row.status = KeyStatus.INACTIVE.value
            add_audit(session, at=now, actor=actor_id, action="keys.deactivate", target=row.label if row else key.name,
                      anthropic_id=key.id, outcome="inactive", reason=f"offboard {user_id}")
        add_audit(session, at=now, actor=actor_id, action="offboard", target=user_id,
                  previous=previous.value if previous else None, anthropic_user=anthropic_user_id,
                  deactivated=[key.id for key in deactivated], failed=len(failed),
                  **({"schedules": schedules} if schedules else {}))
