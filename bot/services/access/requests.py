"""Access requests: asked from a refusal, sent to the people who may grant the role, decided once.

- One pending request per person and role: the row's unique ``open_key`` says so in every process.
- The first decision wins exactly: a conditional UPDATE (``… WHERE status = 'pending'``) claims the request, and an
  approval grants the role in that same transaction; whoever comes second changes nothing and is told who decided.
- Approvers need the right to grant that role (docs/admin.md) and an internal, non-guest account; nobody decides their
  own request. A refused attempt is audited as ``denied``.
- Every copy of the request (the alert channel, or each approver's DM) is updated with the decision, and the
  requester gets a DM. Requests undecided for seven days expire (scheduler leader, or the first click after).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.access_requests import (
    REASON_LIMIT,
    REQUEST_LIFETIME,
    AccessRequestView,
    RequestStatus,
    requestable_above,
)
from bot.domain.marks import code, strong
from bot.domain.mentions import mention
from bot.domain.requests import Requester
from bot.domain.roles import Role, may_manage_role
from bot.domain.secrets import SecretPolicy, kinds_phrase, screen
from bot.services.access.role_changes import GivenRole, give_role_in
from bot.services.access.roles import SCHEDULER_ACTOR, SHELL_ACTOR, RoleChangeDenied
from bot.services.base import Service
from bot.services.conversation.access import effective_role
from bot.services.data.audit import add_audit
from bot.services.ports import RequestBoard, SlackPort
from bot.store.clock import Clock
from bot.store.db import Database, rows_affected
from bot.store.models import (
    AccessRequest,
    AccessRequestMessage,
    GroupMember,
    GroupRoleMapping,
    RoleGrant,
    TimedGrant,
)

log = logging.getLogger(__name__)

MAX_APPROVER_DMS = 25


class FormState(StrEnum):
    OPEN = "open"  # show the form
    PENDING = "pending"  # a request for that role is already waiting
    NOT_NEEDED = "not_needed"  # the person already has every role that may be requested
    NOT_ALLOWED = "not_allowed"  # guests, external or unknown accounts


@dataclass(frozen=True)
class RequestForm:
    state: FormState
    roles: tuple[Role, ...] = ()
    preset: Role | None = None
    pending: AccessRequestView | None = None
    message: str = ""


@dataclass(frozen=True)
class Submission:
    request: AccessRequestView | None = None
    error: str | None = None  # one line for the form's field
    field: str = "reason"


class DecisionKind(StrEnum):
    DECIDED = "decided"
    ALREADY = "already"  # someone else decided first (or it expired)
    REFUSED = "refused"  # the actor may not decide it
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    message: str  # one line for the actor
    request: AccessRequestView | None = None


def view_of(row: AccessRequest) -> AccessRequestView:
    return AccessRequestView(
        id=row.id, user_id=row.slack_user_id, role=Role(row.role), reason=row.reason, created_at=row.created_at,
        status=RequestStatus(row.status), decided_by=row.decided_by, decided_at=row.decided_at,
        duration=timedelta(hours=row.duration_hours) if row.duration_hours else None, grant_until=row.grant_until)


def open_key(user_id: str, role: Role) -> str:
    return f"{user_id}:{role.value}"


def may_ask(requester: Requester, settings: Settings) -> bool:
    return (requester.known and not requester.is_bot and (settings.allow_external_users or not requester.is_external)
            and (settings.allow_guests or not requester.is_guest))


class AccessRequests(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort,
                 board: RequestBoard) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.board = board

    # -- asking -------------------------------------------------------------------------------------------
    async def form(self, requester: Requester, wanted: Role | None) -> RequestForm:
        """What the "Request access" button opens: the form, or why not."""
        if not may_ask(requester, self.settings):
            return RequestForm(FormState.NOT_ALLOWED, message="This account cannot request access to Claude Gate.")
        async with self.sessions() as session:
            current = await effective_role(session, requester.user_id, self.settings.default_role, self.clock())
            roles = tuple(requestable_above(current.role))
            if not roles:
                return RequestForm(FormState.NOT_NEEDED, message=f"Your role is already {strong(current.role)}: "
                                   "there is nothing higher to request here. Ask an admin directly.")
            preset = wanted if wanted in roles else roles[0]
            pending = await self._pending(session, requester.user_id, preset)
        if pending is not None:
            return RequestForm(FormState.PENDING, roles, preset, view_of(pending), pending_text(view_of(pending)))
        return RequestForm(FormState.OPEN, roles, preset)

    async def submit(self, requester: Requester, role_text: str | None, reason: str | None) -> Submission:
        """Store a request (one pending per person and role). Checked again here: the form is only a client."""
        if not may_ask(requester, self.settings):
            return Submission(error="This account cannot request access to Claude Gate.", field="role")
        role = Role.parse(role_text or "")
        reason = (reason or "").strip()
        if not reason:
            return Submission(error="Say what you need it for.")
        if len(reason) > REASON_LIMIT:
            return Submission(error=f"At most {REASON_LIMIT} characters, please.")
        if self.settings.secret_policy is not SecretPolicy.OFF:  # stored, and shown to every approver
            screened = screen(reason)
            if screened.kinds and self.settings.secret_policy is SecretPolicy.BLOCK:
                return Submission(error=f"This contains {kinds_phrase(screened.kinds)}: nothing was sent. Rotate "
                                  f"{'it' if len(screened.kinds) == 1 else 'them'} now, then say what you need "
                                  "without it.")
            reason = screened.text
        now = self.clock()
        stale: int | None = None
        try:
            async with self.sessions.begin() as session:
                current = await effective_role(session, requester.user_id, self.settings.default_role, now)
                if role is None or role not in requestable_above(current.role):
                    choices = " or ".join(strong(r) for r in requestable_above(current.role)) or "nothing"
                    return Submission(error=f"You may request {choices}.", field="role")
                pending = await self._pending(session, requester.user_id, role)
                if pending is not None:
                    return Submission(error=pending_text(view_of(pending)), field="role")
                # a request past its lifetime that the job has not reached yet frees its slot now
                stale = await session.scalar(select(AccessRequest.id).where(
                    AccessRequest.open_key == open_key(requester.user_id, role)))
                if stale is not None:
                    await self._expire_in(session, stale, now)
                row = AccessRequest(slack_user_id=requester.user_id, team_id=requester.team_id, role=role.value,
                                    reason=reason, status=RequestStatus.PENDING.value,
                                    open_key=open_key(requester.user_id, role), created_at=now)
                session.add(row)
                await session.flush()
                add_audit(session, at=now, actor=requester.user_id, action="access.request",
                          target=requester.user_id, role=role.value, request=row.id)
                request = view_of(row)
        except IntegrityError:  # the same person asked for the same role at the same moment elsewhere
            return Submission(error=f"Your request for {strong(role)} is already pending.", field="role")
        if stale is not None:
            await self._tell_expired(stale)
        return Submission(request)

    async def announce(self, request: AccessRequestView) -> int:
        """Post the request to ADMIN_ALERT_CHANNEL, or else to each admin's and owner's DM; returns the copies."""
        async with self.sessions() as session:
            destinations = ([self.settings.admin_alert_channel] if self.settings.admin_alert_channel
                            else await self.approvers(session, request.user_id))
        posted = 0
        for destination in destinations:
            ref = await self.board.post_request(destination, request)
            if ref is None:
                continue
            async with self.sessions.begin() as session:
                session.add(AccessRequestMessage(request_id=request.id, channel=ref[0], ts=ref[1]))
            posted += 1
        if not posted:
            log.warning("access request %s could not be shown to any approver", request.id)
            await self.board.send_dm(request.user_id, f"I could not post your request #{request.id} for "
                                     f"{strong(request.role)} to the admins. It is kept: they see it with "
                                     f"{code('/claude-admin requests')}, or you can tell one of them.")
        return posted

    async def approvers(self, session: AsyncSession, requester_id: str) -> list[str]:
        """Admins and owners (explicit grants, live time-bound grants, mapped groups), never the requester."""
        privileged = [Role.ADMIN.value, Role.OWNER.value]
        explicit = select(RoleGrant.slack_user_id).where(RoleGrant.role.in_(privileged))
        timed = select(TimedGrant.slack_user_id).where(TimedGrant.role.in_(privileged),
                                                       TimedGrant.expires_at > self.clock())
        grouped = (select(GroupMember.slack_user_id)
                   .join(GroupRoleMapping, GroupRoleMapping.usergroup_id == GroupMember.usergroup_id)
                   .where(GroupRoleMapping.role.in_(privileged)))
        users: list[str] = []
        for query in (explicit, timed, grouped):
            users += [u for u in await session.scalars(query) if u != requester_id and u not in users]
        return users[:MAX_APPROVER_DMS]

    # -- deciding -----------------------------------------------------------------------------------------
    async def decide(self, actor: Requester | None, request_id: int, *, approve: bool,
                     duration: timedelta | None = None) -> Decision:
        """Approve (for ``duration``, None: permanently) or deny. ``actor`` None is the shell (all rights).

        The request is claimed with a conditional update in the transaction that grants the role: of two approvers
        at the same moment, in any processes, one decides and the other is told who did.
        """
        actor_id = actor.user_id if actor is not None else SHELL_ACTOR
        now = self.clock()
        async with self.sessions() as session:
            row = await session.get(AccessRequest, request_id)
            if row is None:
                return Decision(DecisionKind.NOT_FOUND, f"There is no access request #{request_id}.")
            request = view_of(row)
            actor_role = (await effective_role(session, actor_id, self.settings.default_role, now)).role \
                if actor is not None else None
        if request.status is not RequestStatus.PENDING:
            return Decision(DecisionKind.ALREADY, already_text(request), request)
        if now >= request.expires_at:
            expired = await self._expire(request_id, now)
            return Decision(DecisionKind.ALREADY, already_text(expired or request), expired or request)
        refusal = self._refusal(actor, actor_id, actor_role, request)
        if refusal is not None:
            await self._audit_denied(actor_id, actor_role, request, refusal)
            return Decision(DecisionKind.REFUSED, refusal, request)
        status = RequestStatus.APPROVED if approve else RequestStatus.DENIED
        given: GivenRole | None = None
        try:
            async with self.sessions.begin() as session:
                claimed = await session.execute(
                    update(AccessRequest)
                    .where(AccessRequest.id == request_id, AccessRequest.status == RequestStatus.PENDING.value)
                    .values(status=status.value, open_key=None, decided_by=actor_id, decided_at=now,
                            duration_hours=int(duration.total_seconds() // 3600) if approve and duration else None,
                            grant_until=now + duration if approve and duration else None)
                    .execution_options(synchronize_session=False))
                if rows_affected(claimed) == 1:
                    if approve:
                        held = await effective_role(session, request.user_id, self.settings.default_role, now)
                        if held.role.rank >= request.role.rank:
                            raise RoleChangeDenied(f"{mention(request.user_id)} already has {strong(held.role)} (from "
                                                   f"{held.source_text}): nothing to grant. Deny the request to "
                                                   "close it.")
                        given = await give_role_in(session, self.clock, self.settings, actor_id=actor_id,
                                                   actor_role=actor_role, target_id=request.user_id,
                                                   role=request.role, duration=duration, team_id=None)
                    add_audit(session, at=now, actor=actor_id, action=f"access.{'approve' if approve else 'deny'}",
                              target=request.user_id, role=request.role.value, request=request_id,
                              until=given.expires_at.isoformat() if given and given.expires_at else None)
        except RoleChangeDenied as exc:  # e.g. the requester became an admin meanwhile: nothing changed
            await self._audit_denied(actor_id, actor_role, request, str(exc))
            return Decision(DecisionKind.REFUSED, str(exc), request)
        async with self.sessions() as session:
            row = await session.get(AccessRequest, request_id)
            assert row is not None
            current = view_of(row)
        if rows_affected(claimed) != 1:
            return Decision(DecisionKind.ALREADY, already_text(current), current)
        await self.show_everywhere(current)
        await self.board.send_dm(request.user_id, requester_dm(current, given))
        return Decision(DecisionKind.DECIDED, current.decision_text, current)

    def _refusal(self, actor: Requester | None, actor_id: str, actor_role: Role | None,
                 request: AccessRequestView) -> str | None:
        if actor is None or actor_role is None:
            return None
        if actor_id == request.user_id:
            return "Nobody decides their own access request: another admin or owner will."
        human_member = actor.known and not actor.is_external and not actor.is_guest and not actor.is_bot
        if not human_member or not may_manage_role(actor_role, request.role):
            return (f"Only people who may grant {strong(request.role)} decide this request (your role is "
                    f"{strong(actor_role)}).")
        return None

    async def _audit_denied(self, actor_id: str, actor_role: Role | None, request: AccessRequestView,
                            reason: str) -> None:
        async with self.sessions.begin() as session:
            add_audit(session, at=self.clock(), actor=actor_id, action="denied", target=request.user_id,
                      command="access request decision", request=request.id,
                      role=actor_role.value if actor_role else None, reason=reason)

    # -- listing and expiry -------------------------------------------------------------------------------
    async def pending(self) -> list[AccessRequestView]:
        async with self.sessions() as session:
            rows = await session.scalars(select(AccessRequest).where(
                AccessRequest.status == RequestStatus.PENDING.value,
                AccessRequest.created_at > self.clock() - REQUEST_LIFETIME).order_by(AccessRequest.id))
            return [view_of(row) for row in rows]

    async def expire_old(self) -> list[AccessRequestView]:
        """The scheduler leader's job: requests undecided for seven days expire; their messages and requesters
        are told. Each is expired by exactly one caller (conditional update)."""
        now = self.clock()
        async with self.sessions() as session:
            ids = list(await session.scalars(select(AccessRequest.id).where(
                AccessRequest.status == RequestStatus.PENDING.value,
                AccessRequest.created_at <= now - REQUEST_LIFETIME).order_by(AccessRequest.id).limit(200)))
        expired = []
        for request_id in ids:
            request = await self._expire(request_id, now)
            if request is not None:
                expired.append(request)
        return expired

    async def _expire(self, request_id: int, now: datetime) -> AccessRequestView | None:
        async with self.sessions.begin() as session:
            expired = await self._expire_in(session, request_id, now)
        if expired:
            return await self._tell_expired(request_id)
        return None

    async def _expire_in(self, session: AsyncSession, request_id: int, now: datetime) -> bool:
        """Expire a request past its lifetime in the caller's transaction; False if someone else got to it."""
        claimed = await session.execute(
            update(AccessRequest)
            .where(AccessRequest.id == request_id, AccessRequest.status == RequestStatus.PENDING.value,
                   AccessRequest.created_at <= now - REQUEST_LIFETIME)
            .values(status=RequestStatus.EXPIRED.value, open_key=None, decided_by=SCHEDULER_ACTOR, decided_at=now)
            .execution_options(synchronize_session=False))
        if rows_affected(claimed) != 1:
            return False
        row = await session.get(AccessRequest, request_id, populate_existing=True)
        assert row is not None
        add_audit(session, at=now, actor=SCHEDULER_ACTOR, action="access.expired", target=row.slack_user_id,
                  role=row.role, request=request_id)
        return True

    async def _tell_expired(self, request_id: int) -> AccessRequestView:
        async with self.sessions() as session:
            row = await session.get(AccessRequest, request_id)
            assert row is not None
            request = view_of(row)
        await self.show_everywhere(request)
        await self.board.send_dm(request.user_id, f"Your request for the Claude Gate role {strong(request.role)} "
                                 f"expired: nobody decided within {REQUEST_LIFETIME.days} days. You can ask again.")
        return request

    async def show_everywhere(self, request: AccessRequestView) -> None:
        async with self.sessions() as session:
            copies = (await session.execute(select(AccessRequestMessage.channel, AccessRequestMessage.ts)
                                            .where(AccessRequestMessage.request_id == request.id))).all()
        for channel, ts in copies:
            await self.board.show_request(channel, ts, request)

    async def _pending(self, session: AsyncSession, user_id: str, role: Role) -> AccessRequest | None:
        """The person's live pending request for ``role`` (one past its lifetime does not count)."""
        row = await session.scalar(select(AccessRequest).where(AccessRequest.open_key == open_key(user_id, role)))
        if row is None or row.created_at <= self.clock() - REQUEST_LIFETIME:
            return None
        return row


def pending_text(request: AccessRequestView) -> str:
    return (f"Your request #{request.id} for {strong(request.role)} is already pending (sent "
            f"{request.created_at:%Y-%m-%d %H:%M} UTC); you will get a DM when someone decides.")


def already_text(request: AccessRequestView) -> str:
    return f"Request #{request.id} was already decided. {request.decision_text}"


def requester_dm(request: AccessRequestView, given: GivenRole | None) -> str:
    if request.status is RequestStatus.APPROVED and given is not None:
        then = f" Then your role is {strong(given.then.role)} again." if given.then is not None else ""
        return (f"{request.decision_text.replace('Approved by', 'Your access request was approved by', 1)}"
                f"{then} Ask your question again: it was not kept.")
    return (f"Your request for the Claude Gate role {strong(request.role)} was denied by "
            f"{request.decision_text.removeprefix('Denied by ').rstrip('.')}. Ask them if you need to know why.")
