"""The gate: every request is admitted or refused here, in the gate's order (docs/architecture.md), and recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config import Settings
from bot.domain.access_requests import lowest_role_above
from bot.domain.channels import is_channel
from bot.domain.decisions import Admission, AlreadyTaken, Outcome, Refusal, RefusalReason
from bot.domain.estimate import input_tokens_bound
from bot.domain.marks import code, strong
from bot.domain.mentions import channel_link, mention
from bot.domain.policy import RolePolicy
from bot.domain.requests import CHANNEL_SURFACES, ChatRequest, Requester
from bot.domain.roles import Role
from bot.domain.secrets import SecretPolicy, blocked_message, screen_request
from bot.services.access.roles import admins_to_ask
from bot.services.base import Service
from bot.services.conversation.access import AccessSnapshot, access_snapshot
from bot.services.conversation.claims import claim_in
from bot.services.conversation.listed_models import ListedModels
from bot.services.conversation.places import INSERT_ANSWERED
from bot.services.conversation.rate_window import lock_user, rpm_refusal
from bot.services.conversation.records import INSERT_RECORD, RecordWriter
from bot.services.keys.choice import KeyChoice, active_key, secret_of
from bot.services.ports import SlackPort
from bot.services.spend.reservations import BudgetRoom, Reservation, budget_room, reserve
from bot.store.clock import Clock
from bot.store.db import DATABASE_FAULTS, Conn, Database

log = logging.getLogger(__name__)



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
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort,
                 records: RecordWriter, models: ListedModels | None = None) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.records = records  # holds the records of requests refused while the database is away
        self.models = models or ListedModels(settings)  # Anthropic's model list, once `serve` has read it
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
            # A Core connection, not an ORM conn: the gate runs on every request and needs no identity map.
            async with self.db.engine.begin() as conn:
                if request.event_id and not await claim_in(conn, request.event_id, self.clock()):
                    return AlreadyTaken(request.event_id)
                access, model, refusal = await self._check_access(conn, request)
                if refusal is not None:
                    await self._record(conn, request, access.role.role, model, refusal=refusal)
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

    def _unreachable(self, request: ChatRequest, exc: BaseException) -> Refusal:
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
            async with self.db.reader.begin() as conn:
                checked = await self._checks(conn, request, screened, own_text, exact=False)
            if not isinstance(checked, Refusal):
                return None
            async with self.db.engine.begin() as conn:
                await self._record(conn, request, screened.access.role.role, screened.model, refusal=checked)
            return checked
        except DATABASE_FAULTS as exc:
            return self._unreachable(request, exc)

    async def _checks(self, conn: Conn, request: ChatRequest, screened: Screened, input_estimate: int, *,
                      exact: bool) -> Refusal | tuple[KeyChoice, BudgetRoom, datetime]:
        """The second phase's checks in the gate's order (docs/architecture.md): a secret in the message
        (SECRET_POLICY), rpm, the key, then every budget with the request's worst case: the first refusal, or the
        key, what the budgets leave room for, and the time they were read at. ``exact`` (the admission) takes the
        asker's and the pools' locks first; without it (the pre-check) they are only read."""
        policy = screened.access.policy
        secret = self._secret_refusal(request)
        if secret is not None:
            return secret
        if exact:
            await lock_user(conn, request.requester.user_id)
        now = self.clock()
        refusal = await rpm_refusal(conn, request.requester.user_id, policy, now)
        if refusal is not None:
            return refusal
        access = screened.access
        key = access.key if access.key and secret_of(access.key.env_var) else (
            await active_key(conn, policy.workspace))
        if key is None:
            return Refusal(RefusalReason.NO_ACTIVE_KEY,
                           f"No usable API key is set up for workspace {code(policy.workspace)}.",
                           f"Ask an admin to register one ({code('/claude-admin keys add')}), then try again.")
        room = await budget_room(conn, user_id=request.requester.user_id, policy=policy, model=screened.model,
                                 input_estimate=input_estimate, now=now, zone=self.settings.budget_zone,
                                 prices=self.settings.prices, lock=exact,
                                 channel_id=request.channel_id if is_channel(request.channel_id) else None)
        if isinstance(room, Refusal):
            return room
        return key, room, now

    async def _admit(self, request: ChatRequest, screened: Screened, input_estimate: int) -> Admission | Refusal:
        access, model = screened.access, screened.model
        async with self.db.engine.begin() as conn:
            role, policy = access.role.role, access.policy
            checked = await self._checks(conn, request, screened, input_estimate, exact=True)
            if isinstance(checked, Refusal):
                await self._record(conn, request, role, model, refusal=checked)
                return checked
            key, room, now = checked
            # last: nothing after it may refuse, or the counters would keep the reservation
            reservation = await reserve(conn, room, input_estimate, alert_percent=self.settings.budget_alert_percent)
            record_id = await self._record(conn, request, role, model, key_label=key.label,
                                           max_tokens=reservation.max_tokens, reservation=reservation,
                                           input_estimate=input_estimate, now=now)
            if (request.surface in CHANNEL_SURFACES or request.surface == "assistant") and request.channel_id \
                    and request.thread_ts:
                # the asker may follow up in this thread without a mention (THREAD_FOLLOW_UPS); a panel thread
                # (recorded when it opened) is renewed, so retention counts from its last answer
                await conn.execute(INSERT_ANSWERED[conn.dialect.name],
                                      {"channel_id": request.channel_id, "thread_ts": request.thread_ts,
                                       "user_id": request.requester.user_id, "now": now})
            return Admission(record_id=record_id, user_id=request.requester.user_id, role=role, model=model,
                             max_tokens=reservation.max_tokens, key_label=key.label, key_env_var=key.env_var,
                             workspace=policy.workspace, key_failing=key.failing, admitted_at=now,
                             input_estimate=input_estimate, reserved_micros=reservation.micros,
                             charged_to=reservation.charged_to, max_tokens_limited_by=reservation.limited_by,
                             budget_alert_due=reservation.alert_due, attachments=policy.attachments,
                             channel_prompt=access.channel.prompt if access.channel else None)

    async def first_phase_refusal(self, request: ChatRequest) -> Refusal | None:
        """Phase 1's checks (account, role, channel, model) for ``request``, claiming and recording nothing: for
        what a surface must look up in Slack before asking the gate (the members of the channel a DM asks about),
        so that nothing beyond the asker is looked up for a request the gate would refuse. screen() decides."""
        async with self.db.reader.begin() as conn:
            _, _, refusal = await self._check_access(conn, request)
            return refusal

    async def who_may_chat(self, requester: Requester) -> tuple[AccessSnapshot, Refusal | None]:
        """The first checks of the gate (account, role) without recording anything: for greetings and status."""
        async with self.db.engine.connect() as conn:
            access = await access_snapshot(conn, requester.user_id, self.settings.default_role, self.clock())
            return access, await self._account_refusal(conn, requester, access)

    async def _account_refusal(self, conn: Conn, asker: Requester, access: AccessSnapshot) -> Refusal | None:
        """Unknown, external, guest, or a role without chat — in the gate's order (docs/architecture.md)."""
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
            admins = await admins_to_ask(conn)
            who = ", ".join(mention(a) for a in admins) if admins else "an admin"
            wanted = requestable(access, lambda _policy: True)
            ask = f"Press {strong('Request access')}, or ask" if wanted else "Ask"
            return Refusal(
                RefusalReason.ROLE_CANNOT_CHAT, f"Your role {strong(access.role.role)} cannot ask Claude.",
                f"{ask} {who} to run {code(f'/claude-admin grant {mention(asker.user_id)} {wanted or Role.USER}')}.",
                request_role=wanted)
        return None

    async def _check_access(self, conn: Conn, request: ChatRequest
                            ) -> tuple[AccessSnapshot, str | None, Refusal | None]:
        """Account, role, channel and model; a model Anthropic has retired is refused with what to do."""
        access, model, refusal = await self._access_and_model(conn, request)
        if refusal is None and model is not None and self.models.retired(model):
            name = self.settings.models.alias_of(model)
            points = f"{code(name)} points at {code(model)}" if name != model else code(model)
            refusal = Refusal(RefusalReason.MODEL_RETIRED, f"{points}, a model Anthropic has retired.",
                              f"An admin can choose a listed one ({code('claude-gate models')} lists them) for "
                              f"MODEL_{name.upper()} or with {code('/claude-admin policy set <role> models …')}."
                              if name != model else
                              f"Choose another model, or ask an admin to change the policy that names it "
                              f"({code('claude-gate models')} lists what Anthropic offers).")
        return access, model, refusal

    async def _access_and_model(self, conn: Conn, request: ChatRequest
                                ) -> tuple[AccessSnapshot, str | None, Refusal | None]:
        access = await access_snapshot(conn, request.requester.user_id, self.settings.default_role,
                                       self.clock(), channel_id=request.channel_id)
        role, policy = access.role.role, access.policy
        refusal = await self._account_refusal(conn, request.requester, access)
        if refusal is None:
            refusal = self._channel_refusal(access)
        if refusal is not None:
            return access, None, refusal
        catalog = self.settings.models
        allowed = catalog.allowed(policy.models)
        allowed_names = ", ".join(code(catalog.alias_of(m)) for m in allowed)
        if request.model is not None:
            model = catalog.resolve(request.model)
            if model is None:
                return access, None, Refusal(
                    RefusalReason.UNKNOWN_MODEL, f"{code(request.model)} is not a model I know.",
                    f"Your role {strong(role)} may use {allowed_names}.")
            if model not in allowed:
                wanted = requestable(access, lambda p: model in catalog.allowed(p.models))
                offer = f" or press {strong('Request access')} for {strong(wanted)}" if wanted else ""
                return access, model, Refusal(
                    RefusalReason.MODEL_NOT_ALLOWED, f"Your role {strong(role)} may not use {code(request.model)}.",
                    f"Your role may use {allowed_names}: start your message with "
                    f"{code('--model ' + catalog.alias_of(allowed[0]))}{offer}.", request_role=wanted)
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
        """The channel's own rule (docs/channels-and-data.md): switched off, or open to some roles only. DMs have no
        settings."""
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
            allowed = ", ".join(strong(r) for r in channel.roles or ())
            wanted = requestable(access, lambda _policy: True)
            offer = f", press {strong('Request access')} for {strong(wanted)}," if wanted else ""
            return Refusal(RefusalReason.CHANNEL_ROLE, f"Your role {strong(role)} may not ask Claude in {where}.",
                           f"Roles allowed here: {allowed}. Ask me in a direct message{offer} or ask an admin.",
                           request_role=wanted)
        return None

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

    async def _record(self, conn: Conn, request: ChatRequest, role: Role, model: str | None, *,
                      refusal: Refusal | None = None, key_label: str | None = None,
                      max_tokens: int | None = None, reservation: Reservation | None = None,
                      input_estimate: int | None = None, now: datetime | None = None) -> int:
        values = self._record_values(request, role, model, refusal=refusal, key_label=key_label,
                                     max_tokens=max_tokens, reservation=reservation, input_estimate=input_estimate,
                                     now=now)
        return (await conn.execute(INSERT_RECORD, values)).scalar_one()
