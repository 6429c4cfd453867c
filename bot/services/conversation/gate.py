"""The gate: every request is admitted or refused here, in PRODUCT §2's order, and recorded."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.config import Settings
from bot.domain.access_requests import lowest_role_above
from bot.domain.budgets import (
    MIN_GRANT_TOKENS,
    Limit,
    Scope,
    fit_tokens,
    period_end,
    period_start,
    reservation_micros,
    resets_in,
)
from bot.domain.channels import is_channel
from bot.domain.decisions import Admission, AlreadyTaken, Outcome, Refusal, RefusalReason
from bot.domain.estimate import input_tokens_bound
from bot.domain.mentions import channel_link, mention
from bot.domain.policy import RPM_WINDOW_SECONDS, RolePolicy, granted_max_tokens
from bot.domain.pricing import Price, most_expensive, price_of
from bot.domain.requests import CHANNEL_SURFACES, ChatRequest, Requester
from bot.domain.roles import Role
from bot.domain.secrets import SecretPolicy, blocked_message, screen_request
from bot.services.access.roles import admins_to_ask
from bot.services.base import Service
from bot.services.conversation.access import AccessSnapshot, access_snapshot
from bot.services.conversation.claims import claim_in
from bot.services.conversation.places import INSERT_ANSWERED
from bot.services.conversation.records import INSERT_RECORD, RecordWriter
from bot.services.keys.choice import KeyChoice, active_key, secret_of
from bot.services.ports import Workspace
from bot.services.spend.counters import (
    ADVISORY_LOCK,
    CounterKey,
    add_to_counters,
    budgets_for,
    counter_keys,
    limits_for,
    lock_scopes,
    read_counters,
)
from bot.store.clock import Clock
from bot.store.db import DATABASE_FAULTS, Database
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

Db = AsyncConnection | AsyncSession  # the gate's queries run on either


@dataclass(frozen=True)
class RateWindow:
    used: int  # admitted requests in the last 60 s
    limit: int
    free_in: int | None  # seconds until a slot frees when the limit is reached, else None

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


RECENT_ADMISSIONS = (
    select(RequestRecord.created_at)
    .where(RequestRecord.slack_user_id == bindparam("user_id"), RequestRecord.admitted.is_(True),
           RequestRecord.created_at > bindparam("since", type_=RequestRecord.created_at.type))
    .order_by(RequestRecord.created_at.desc())
    .limit(bindparam("limit"))
)


async def rate_window(session: Db, user_id: str, limit: int, now: datetime) -> RateWindow:
    """Exact rolling window: the limit-th most recent admission in the window frees a slot 60 s after it."""
    if limit <= 0:
        return RateWindow(0, 0, None)
    since = now - timedelta(seconds=RPM_WINDOW_SECONDS)
    recent = list(await session.scalars(RECENT_ADMISSIONS, {"user_id": user_id, "since": since, "limit": limit}))
    if len(recent) < limit:
        return RateWindow(len(recent), limit, None)
    blocking = recent[-1]
    wait = max(1, math.ceil((blocking + timedelta(seconds=RPM_WINDOW_SECONDS) - now).total_seconds()))
    return RateWindow(len(recent), limit, wait)


@dataclass(frozen=True)
class Reservation:
    max_tokens: int
    micros: int
    charged_to: tuple[str, ...]
    limited_by: str  # what set max_tokens: the role's limit, or the budget with the least room
    alert_due: bool  # a USD budget is at its alert level with this reservation counted (checked at the end)


@dataclass(frozen=True)
class BudgetRoom:
    """What every budget of a request leaves room for, as read (before anything is reserved)."""

    granted: int  # output tokens
    limited_by: str
    charged: tuple[str, ...]  # the scopes whose counters the reservation goes to
    keys: list[CounterKey]  # those counters
    price: Price
    usd_spent: tuple[tuple[Limit, int], ...]  # each USD budget and what it has spent


def requestable(access: AccessSnapshot, passes: Callable[[RolePolicy], bool]) -> Role | None:
    """The lowest role that may be requested (user or power) above the asker's that would have let the message
    through: its policy chats and ``passes``, and the channel asked in admits it. None in a channel switched off:
    no "Request access" there."""
    channel = access.channel
    if channel is not None and not channel.enabled:
        return None
    return lowest_role_above(access.role.role, {
        role: policy.allows_chat and passes(policy) and (channel is None or channel.allows(role))
        for role, policy in access.policies.items()})


@dataclass(frozen=True)
class Screened:
    """A request through the gate's first phase: who asks may ask here, with this model."""

    access: AccessSnapshot
    model: str


class Gate(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, workspace: Workspace,
                 records: RecordWriter) -> None:
        super().__init__(db=db, settings=settings, clock=clock, workspace=workspace)
        self.records = records  # holds the records of requests refused while the database is away
        # the holder of this process's lease, once held (bot/services/conversation/process_leases.py):
        # admitted records carry it
        self.process_id: str | None = None

    async def admit_request(self, request: ChatRequest, *, input_estimate: int | None = None
                            ) -> Admission | Refusal | AlreadyTaken:
        """Both phases at once, for a request with nothing to fetch in between (the terminal, benchmarks)."""
        screened = await self.screen(request)
        if not isinstance(screened, Screened):
            return screened
        return await self.admit(request, screened, input_estimate=input_estimate)

    async def screen(self, request: ChatRequest) -> Screened | Refusal | AlreadyTaken:
        """Phase 1 (ARCHITECTURE.md): claim the message, then account, role, channel and model, from the access
        statement, with no lock, before anything beyond the asker is looked up or fetched. A refusal is recorded.

        A message already claimed (a retry, its second event) is AlreadyTaken. If the database is unreachable the
        gate fails closed: a refusal, whose record the record writer holds until the database is back.
        """
        try:
            # A Core connection, not an ORM session: the gate runs on every request and needs no identity map.
            async with self.db.engine.begin() as session:
                if request.event_id and not await claim_in(session, request.event_id, self.clock()):
                    return AlreadyTaken(request.event_id)
                access, model, refusal = await self._check_access(session, request)
                if refusal is not None:
                    await self._record(session, request, access.role.role, model, refusal=refusal)
                    return refusal
                assert model is not None
                return Screened(access, model)
        except DATABASE_FAULTS as exc:
            return self._unreachable(request, exc)

    async def admit(self, request: ChatRequest, screened: Screened, *, input_estimate: int | None = None
                    ) -> Admission | Refusal:
        """Phase 2, once the history and files are fetched: secrets in the message (SECRET_POLICY), then rpm, the
        key, then every budget with the request's worst case reserved (``input_estimate``: an upper bound of its
        input tokens from bot.domain.estimate; without one, the request's own text is bounded), in one transaction
        under the asker's and the pools' locks; the request is recorded in flight, or refused and recorded. The
        caller screens ``request`` to send its redacted text; this screens it if not."""
        request = screen_request(request, self.settings.secret_policy)
        if input_estimate is None:
            input_estimate = input_tokens_bound(self.settings.system_prompt, [{"content": request.text}])
        try:
            return await self._admit(request, screened, input_estimate)
        except DATABASE_FAULTS as exc:
            return self._unreachable(request, exc)

    def _unreachable(self, request: ChatRequest, exc: Exception) -> Refusal:
        log.warning("database unreachable while admitting %s: %s", request.requester.user_id, type(exc).__name__)
        return self.refuse_unreachable(request)

    def refuse_unreachable(self, request: ChatRequest) -> Refusal:
        """Fail closed: the database is unreachable (or the record writer too far behind); the refusal's record is
        held by the record writer until the database is back (past its bound, counted in one aggregate record)."""
        refusal = Refusal(RefusalReason.DATABASE_UNAVAILABLE,
                          "I cannot check your access right now: my database is unreachable.",
                          "Nothing was sent to Claude. Try again in a minute.")
        self.records.hold(self._record_values(request, None, None, refusal=refusal))
        return refusal

    async def precheck(self, request: ChatRequest, screened: Screened) -> Refusal | None:
        """Between the phases, before the thread's history and files are fetched: the second phase's checks (a secret
        in the message, rpm, the key, the budgets) for the request's own text, read with no lock and nothing reserved,
        so a request they refuse costs no download. A refusal is recorded; None lets the caller fetch, and admit()
        then decides exactly, under the locks, with the whole input. The caller screens ``request``; this screens
        it if not."""
        request = screen_request(request, self.settings.secret_policy)
        own_text = input_tokens_bound("", [{"content": request.text}])  # never above the whole request's bound
        try:
            async with self.db.reader.begin() as session:
                checked = await self._checks(session, request, screened, own_text, exact=False)
            if not isinstance(checked, Refusal):
                return None
            async with self.db.engine.begin() as session:
                await self._record(session, request, screened.access.role.role, screened.model, refusal=checked)
            return checked
        except DATABASE_FAULTS as exc:
            return self._unreachable(request, exc)

    async def _checks(self, session: Db, request: ChatRequest, screened: Screened, input_estimate: int, *,
                      exact: bool) -> Refusal | tuple[KeyChoice, BudgetRoom, datetime]:
        """The second phase's checks in PRODUCT §2's order: a secret in the message (SECRET_POLICY), rpm, the key,
        then every budget with the request's worst case: the first refusal, or the key, what the budgets leave room
        for, and the time they were read at. ``exact`` (the admission) takes the asker's and the pools' locks first;
        without it (the pre-check) they are only read."""
        policy = screened.access.policy
        secret = self._secret_refusal(request)
        if secret is not None:
            return secret
        if exact:
            await self._lock_user(session, request.requester.user_id)
        now = self.clock()
        refusal = await self._rpm_refusal(session, request.requester.user_id, policy, now)
        if refusal is not None:
            return refusal
        access = screened.access
        key = access.key if access.key and secret_of(access.key.env_var) else (
            await active_key(session, policy.workspace))
        if key is None:
            return Refusal(RefusalReason.NO_ACTIVE_KEY,
                           f"No usable API key is set up for workspace `{policy.workspace}`.",
                           "Ask an admin to register one (`/claude-admin keys add`), then try again.")
        room = await self._budget_room(session, request, policy, screened.model, input_estimate, now, lock=exact)
        if isinstance(room, Refusal):
            return room
        return key, room, now

    async def _admit(self, request: ChatRequest, screened: Screened, input_estimate: int) -> Admission | Refusal:
        access, model = screened.access, screened.model
        async with self.db.engine.begin() as session:
            role, policy = access.role.role, access.policy
            checked = await self._checks(session, request, screened, input_estimate, exact=True)
            if isinstance(checked, Refusal):
                await self._record(session, request, role, model, refusal=checked)
                return checked
            key, room, now = checked
            # last: nothing after it may refuse, or the counters would keep the reservation
            reservation = await self._reserve(session, room, input_estimate)
            record_id = await self._record(session, request, role, model, key_label=key.label,
                                           max_tokens=reservation.max_tokens, reservation=reservation,
                                           input_estimate=input_estimate, now=now)
            if (request.surface in CHANNEL_SURFACES or request.surface == "assistant") and request.channel_id \
                    and request.thread_ts:
                # the asker may follow up in this thread without a mention (THREAD_FOLLOW_UPS); a panel thread
                # (recorded when it opened) is renewed, so retention counts from its last answer
                await session.execute(INSERT_ANSWERED[session.dialect.name],
                                      {"channel_id": request.channel_id, "thread_ts": request.thread_ts,
                                       "user_id": request.requester.user_id, "now": now})
            return Admission(record_id=record_id, user_id=request.requester.user_id, role=role, model=model,
                             max_tokens=reservation.max_tokens, key_label=key.label, key_env_var=key.env_var,
                             workspace=policy.workspace, key_failing=key.failing, admitted_at=now,
                             input_estimate=input_estimate, reserved_micros=reservation.micros,
                             charged_to=reservation.charged_to, max_tokens_limited_by=reservation.limited_by,
                             budget_alert_due=reservation.alert_due, attachments=policy.attachments,
                             channel_prompt=access.channel.prompt if access.channel else None)

    async def _budget_room(self, session: Db, request: ChatRequest, policy: RolePolicy, model: str,
                           input_estimate: int, now: datetime, *, lock: bool) -> BudgetRoom | Refusal:
        """Every budget that applies, in PRODUCT §2's order (daily tokens, then USD: the person's, their groups',
        the org's): the output tokens that fit all of them with ``input_estimate``, or the first that refuses.
        ``lock``: the pools' locks are taken before their counters are read (the admission)."""
        user_id = request.requester.user_id
        tz = self.settings.budget_zone
        person = Scope.user(user_id).key
        budgets = await budgets_for(session, user_id)
        limits = limits_for(user_id, policy, budgets)
        pools = [b for b in budgets if b.scope != person]
        charged = tuple(sorted({person, *(pool.scope for pool in pools)}))
        if lock:
            await lock_scopes(session, (pool.scope for pool in pools))
        price = price_of(model, self.settings.prices)
        if price is None:
            if any(not limit.tokens for limit in limits):
                return Refusal(RefusalReason.MODEL_NOT_PRICED,
                               f"`{model}` has no price, and a USD budget applies to you.",
                               "Ask an admin to add its price to MODEL_PRICES, or choose another model.")
            price = most_expensive(self.settings.prices)
        keys = counter_keys(charged, now, tz)
        counters = await read_counters(session, keys)
        role_grant = granted_max_tokens(policy, None)
        granted, limited_by = role_grant.tokens, role_grant.limited_by
        floor = min(MIN_GRANT_TOKENS, granted)
        usd_spent: list[tuple[Limit, int]] = []
        for limit in limits:
            starts = period_start(now, limit.period, tz)
            micros, tokens = counters[(limit.scope, limit.period.value, starts)]
            spent = tokens if limit.tokens else micros
            if not limit.tokens:
                usd_spent.append((limit, spent))
            fit = fit_tokens(limit, spent, input_estimate, price)
            if fit is not None and fit < floor:
                return self._budget_refusal(limit, spent, now, starts)
            if fit is not None and fit < granted:
                granted, limited_by = fit, f"the {fit:,} tokens that {limit.label} leaves room for"
        return BudgetRoom(granted, limited_by, charged, keys, price, tuple(usd_spent))

    async def _reserve(self, session: Db, room: BudgetRoom, input_estimate: int) -> Reservation:
        """Add the request's worst case (``input_estimate`` and the granted output) to every budget's counters."""
        micros = reservation_micros(room.price, input_estimate, room.granted)
        await add_to_counters(session, room.keys, micros, input_estimate + room.granted)
        # Counters rise only here, at admissions; a finish replaces a reservation by a cost never above it. So an
        # answer whose admission left every USD budget below the first alert level cannot cross one when it ends
        # (an admission that does is checked at its own end): most answers skip the alerts' transaction.
        level = self.settings.budget_alert_percent  # the lower of the two levels (it is below 100)
        alert_due = any((spent + micros) * 100 >= level * limit.limit for limit, spent in room.usd_spent)
        return Reservation(room.granted, micros, room.charged, room.limited_by, alert_due)

    async def first_phase_refusal(self, request: ChatRequest) -> Refusal | None:
        """Phase 1's checks (account, role, channel, model) for ``request``, claiming and recording nothing: for
        what a surface must look up in Slack before asking the gate (the members of the channel a DM asks about),
        so that nothing beyond the asker is looked up for a request the gate would refuse. screen() decides."""
        async with self.db.reader.begin() as session:
            _, _, refusal = await self._check_access(session, request)
            return refusal

    async def who_may_chat(self, requester: Requester) -> tuple[AccessSnapshot, Refusal | None]:
        """The first checks of the gate (account, role) without recording anything: for greetings and status."""
        async with self.db.engine.connect() as session:
            access = await access_snapshot(session, requester.user_id, self.settings.default_role, self.clock())
            return access, await self._account_refusal(session, requester, access)

    async def _account_refusal(self, session: Db, asker: Requester, access: AccessSnapshot) -> Refusal | None:
        """Unknown, external, guest, or a role without chat — in PRODUCT §2's order."""
        if not asker.known or asker.is_bot:
            return Refusal(
                RefusalReason.UNKNOWN_USER, "I could not look up your Slack profile, so I cannot check your access.",
                "Try again in a minute; if it keeps happening, tell an admin.")
        if asker.is_external and not self.settings.allow_external_users:
            return Refusal(
                RefusalReason.EXTERNAL_USER, "Claude Gate only answers members of this workspace.",
                "Users from other organisations (Slack Connect) need ALLOW_EXTERNAL_USERS=true, set by an admin.")
        if asker.is_guest and not self.settings.allow_guests:
            return Refusal(
                RefusalReason.GUEST, "Claude Gate does not answer guest accounts.",
                "Guests need ALLOW_GUESTS=true, set by an admin.")
        if not access.policy.allows_chat:
            admins = await admins_to_ask(session)
            who = ", ".join(mention(a) for a in admins) if admins else "an admin"
            wanted = requestable(access, lambda _policy: True)
            ask = "Press *Request access*, or ask" if wanted else "Ask"
            return Refusal(
                RefusalReason.ROLE_CANNOT_CHAT, f"Your role *{access.role.role}* cannot ask Claude.",
                f"{ask} {who} to run `/claude-admin grant {mention(asker.user_id)} {wanted or Role.USER}`.",
                request_role=wanted)
        return None

    async def _check_access(self, session: Db, request: ChatRequest
                            ) -> tuple[AccessSnapshot, str | None, Refusal | None]:
        access = await access_snapshot(session, request.requester.user_id, self.settings.default_role,
                                       self.clock(), channel_id=request.channel_id)
        role, policy = access.role.role, access.policy
        refusal = await self._account_refusal(session, request.requester, access)
        if refusal is None:
            refusal = self._channel_refusal(access)
        if refusal is not None:
            return access, None, refusal
        catalog = self.settings.models
        allowed = catalog.allowed(policy.models)
        allowed_names = ", ".join(f"`{catalog.alias_of(m)}`" for m in allowed)
        if request.model is not None:
            model = catalog.resolve(request.model)
            if model is None:
                return access, None, Refusal(
                    RefusalReason.UNKNOWN_MODEL, f"`{request.model}` is not a model I know.",
                    f"Your role *{role}* may use {allowed_names}.")
            if model not in allowed:
                wanted = requestable(access, lambda p: model in catalog.allowed(p.models))
                offer = f" or press *Request access* for *{wanted}*" if wanted else ""
                return access, model, Refusal(
                    RefusalReason.MODEL_NOT_ALLOWED, f"Your role *{role}* may not use `{request.model}`.",
                    f"Your role may use {allowed_names}: start your message with `--model "
                    f"{catalog.alias_of(allowed[0])}`{offer}.", request_role=wanted)
            return access, model, None
        # --model, then the channel's model, then the person's, then the role's first: always within the role
        for choice in (access.channel.model if access.channel else None, access.preferred_model):
            model = catalog.resolve(choice) if choice else None
            if model is not None and model in allowed:
                return access, model, None
        return access, allowed[0], None

    def _stored_prompt(self, request: ChatRequest) -> str:
        """LOG_PROMPTS keeps the text with its credentials redacted, whatever the refusal (any policy but off)."""
        return screen_request(request, self.settings.secret_policy).text

    def _secret_refusal(self, request: ChatRequest) -> Refusal | None:
        """SECRET_POLICY=block: the new message (and its files) must hold no credential. Secrets in the thread's
        history are redacted from it instead: someone else's paste is not held against the asker."""
        if not request.secrets or self.settings.secret_policy is not SecretPolicy.BLOCK:
            return None
        why, hint = blocked_message(request.secrets, in_channel=is_channel(request.channel_id))
        return Refusal(RefusalReason.SECRET, why, hint)

    @staticmethod
    def _channel_refusal(access: AccessSnapshot) -> Refusal | None:
        """The channel's own rule (PRODUCT §7): switched off, or open to some roles only. DMs have no settings."""
        channel = access.channel
        if channel is None:
            return None
        where = channel_link(channel.channel_id)
        if not channel.enabled:
            by = (mention(channel.off_by) if channel.off_by and channel.off_by[:1] in ("U", "W")
                  else "an operator (claude-gate)" if channel.off_by else "an admin")
            return Refusal(RefusalReason.CHANNEL_OFF, f"Claude is switched off in {where} by {by}.",
                           "Ask me in a direct message instead.")
        role = access.role.role
        if not channel.allows(role):
            allowed = ", ".join(f"*{r}*" for r in channel.roles or ())
            wanted = requestable(access, lambda _policy: True)
            offer = f", press *Request access* for *{wanted}*," if wanted else ""
            return Refusal(RefusalReason.CHANNEL_ROLE, f"Your role *{role}* may not ask Claude in {where}.",
                           f"Roles allowed here: {allowed}. Ask me in a direct message{offer} or ask an admin.",
                           request_role=wanted)
        return None

    async def _lock_user(self, session: Db, user_id: str) -> None:
        """Serialise one user's admissions across processes (SQLite: BEGIN IMMEDIATE already did)."""
        if session.dialect.name == "postgresql":
            await session.execute(ADVISORY_LOCK, {"key": f"rpm:{user_id}"})

    async def _rpm_refusal(self, session: Db, user_id: str, policy: RolePolicy,
                           now: datetime) -> Refusal | None:
        window = await rate_window(session, user_id, policy.rpm_limit, now)
        if window.free_in is None:
            return None
        return Refusal(RefusalReason.RATE_LIMITED,
                       f"You have used your {policy.rpm_limit} requests for this minute (role *{policy.role}*).",
                       f"A slot frees in {window.free_in} s.", retry_after_seconds=window.free_in)

    def _budget_refusal(self, limit: Limit, spent: int, now: datetime, starts: date) -> Refusal:
        tz = self.settings.budget_zone
        left = int((period_end(starts, limit.period, tz) - now).total_seconds())
        what = "tokens" if limit.tokens else "dollars"
        return Refusal(RefusalReason.BUDGET_EXHAUSTED,
                       f"This request does not fit {limit.label}: {limit.describe(spent)} used "
                       f"({what} of requests still running included).",
                       f"It resets at {resets_in(now, starts, limit.period, tz)}.",
                       retry_after_seconds=max(1, left), budget=(limit.scope, limit.period.value))

    def _record_values(self, request: ChatRequest, role: Role | None, model: str | None, *,
                       refusal: Refusal | None = None, key_label: str | None = None,
                       max_tokens: int | None = None, reservation: Reservation | None = None,
                       input_estimate: int | None = None, now: datetime | None = None) -> dict[str, object]:
        return {
            "created_at": now or self.clock(), "slack_user_id": request.requester.user_id,
            "team_id": request.requester.team_id, "role": role.value if role else "unknown", "model": model,
            "key_label": key_label, "max_tokens": max_tokens, "input_tokens": 0, "output_tokens": 0,
            "cost_micros": reservation.micros if reservation else 0,
            "reserved_micros": reservation.micros if reservation else None, "input_estimate": input_estimate,
            "cache_write_tokens": 0, "cache_read_tokens": 0, "usage_source": None,
            "charged_to": list(reservation.charged_to) if reservation else None, "admitted": refusal is None,
            "outcome": (Outcome.REFUSED if refusal else Outcome.ADMITTED).value,
            "refusal_reason": refusal.reason.value if refusal else None, "surface": request.surface,
            "channel_id": request.channel_id, "thread_ts": request.thread_ts,
            "prompt": self._stored_prompt(request) if self.settings.log_prompts else None, "requests": 1,
            "process_id": self.process_id if refusal is None else None,
        }

    async def _record(self, session: Db, request: ChatRequest, role: Role, model: str | None, *,
                      refusal: Refusal | None = None, key_label: str | None = None,
                      max_tokens: int | None = None, reservation: Reservation | None = None,
                      input_estimate: int | None = None, now: datetime | None = None) -> int:
        values = self._record_values(request, role, model, refusal=refusal, key_label=key_label,
                                     max_tokens=max_tokens, reservation=reservation, input_estimate=input_estimate,
                                     now=now)
        return (await session.execute(INSERT_RECORD, values)).scalar_one()
