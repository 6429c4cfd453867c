"""Giving someone a role and telling them so: one path for `grant`, the CLI and approved access requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.grants import describe_duration, until_text
from bot.domain.marks import Icon, icon, strong
from bot.domain.mentions import mention
from bot.domain.roles import Role
from bot.services.access.policies import describe_policy, load_policy
from bot.services.access.roles import EndedGrant, end_expired_grants, grant_role
from bot.services.base import Service
from bot.services.conversation.access import EffectiveRole, effective_role
from bot.store.clock import Clock


@dataclass(frozen=True)
class GivenRole:
    target_id: str
    role: Role
    limits: str
    duration: timedelta | None = None
    expires_at: datetime | None = None
    then: EffectiveRole | None = None  # for a time-bound grant: the role the person returns to when it ends

    @property
    def how_long(self) -> str:
        if self.expires_at is None or self.duration is None:
            return "permanently"
        return f"for {describe_duration(self.duration)}, until {until_text(self.expires_at)}"

    @property
    def title(self) -> str:
        if self.expires_at is None:
            return f"{icon(Icon.DONE)} {mention(self.target_id)} now has the role {strong(self.role)}."
        return f"{icon(Icon.DONE)} {mention(self.target_id)} has the role {strong(self.role)} {self.how_long}."

    @property
    def detail_lines(self) -> list[str]:
        lines = [self.limits]
        if self.then is not None:
            lines.append(f"Then they return to {strong(self.then.role)} (from {self.then.source_text}).")
        return lines

    def dm_text(self, actor_id: str) -> str:
        who = mention(actor_id) if actor_id.startswith(("U", "W")) else "An admin"
        if self.expires_at is None:
            return (f"{who} gave you the Claude Gate role {strong(self.role)} ({self.limits}). "
                    "Mention me in a channel or DM me to ask Claude.")
        then = f" Then your role is {strong(self.then.role)} again." if self.then is not None else ""
        return (f"{who} gave you the Claude Gate role {strong(self.role)} {self.how_long} ({self.limits}).{then} "
                "Mention me in a channel or DM me to ask Claude.")


async def give_role_in(session: AsyncSession, clock: Clock, settings: Settings, *, actor_id: str,
                       actor_role: Role | None, target_id: str, role: Role, duration: timedelta | None = None,
                       team_id: str | None = None) -> GivenRole:
    """Grant inside the caller's transaction (raises RoleChangeDenied); returns what to tell people."""
    expires_at = clock() + duration if duration is not None else None
    await grant_role(session, clock, actor_id=actor_id, actor_role=actor_role, target_id=target_id, role=role,
                     team_id=team_id, expires_at=expires_at)
    await session.flush()
    policy = await load_policy(session, role)
    then = (await effective_role(session, target_id, settings.default_role, expires_at)
            if expires_at is not None else None)
    return GivenRole(target_id, role, describe_policy(policy, settings.models.aliases), duration, expires_at, then)


class RoleChanges(Service):
    """Giving a role (`grant`, `claude-gate grant`) and ending the time-bound ones (the scheduler leader)."""

    async def give_role(self, *, actor_id: str, actor_role: Role | None, target_id: str, role: Role,
                        duration: timedelta | None = None, team_id: str | None = None) -> GivenRole:
        async with self.sessions.begin() as session:
            return await give_role_in(session, self.clock, self.settings, actor_id=actor_id, actor_role=actor_role,
                                      target_id=target_id, role=role, duration=duration, team_id=team_id)

    async def end_expired_grants_and_tell(self) -> list[EndedGrant]:
        """The scheduler leader's job: end time-bound grants that have passed (audited) and DM each person their
        role now. The gate never waited for this: it compares the end with the clock at every admission."""
        now = self.clock()
        async with self.sessions.begin() as session:
            ended = await end_expired_grants(session, now)
        for grant in ended:
            async with self.sessions() as session:
                now_role = await effective_role(session, grant.user_id, self.settings.default_role, self.clock())
            await self.slack.send_dm(grant.user_id, f"Your time-bound Claude Gate role {strong(grant.role)} ended at "
                                         f"{until_text(grant.expired_at)}. Your role is now {strong(now_role.role)} "
                                         f"(from {now_role.source_text}).")
        return ended
