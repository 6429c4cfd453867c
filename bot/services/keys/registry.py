"""The registry of Anthropic API keys that admins manage (docs/keys.md): add, list, revoke, the default key.

Secrets live only in environment variables: the database keeps the variable's name and a hint (Anthropic's
partial hint, or the last four characters); no secret is stored, logged or shown. Which key serves a request is
bot/services/keys/choice.py, read at every request and before every call, so a revoke applies to every process
from the moment it is acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.domain.commands import parse_user
from bot.domain.errors import KeyCommandError as KeyCommandError
from bot.domain.keys import NOT_AN_API_KEY, KeyStatus, Rotation, rotation_of
from bot.domain.marks import code
from bot.domain.mentions import mention
from bot.domain.replies import Answer
from bot.services.base import Service
from bot.services.data.audit import add_audit
from bot.services.keys.admin_api import AdminApiError, AnthropicAdmin, OrgKey
from bot.services.keys.choice import USABLE_STATUSES, KeyGuard, active_key, secret_of, usable_key
from bot.store.clock import Clock
from bot.store.models import ApiKey, RolePolicyRow

DEFAULT_KEY_LABEL = "default"
DEFAULT_WORKSPACE = "default"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"


class StepOutcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Step:
    """One step of a revoke or an offboarding, as reported to the admin."""

    what: str
    outcome: StepOutcome
    detail: str


def key_hint(secret: str) -> str:
    """What may be shown of a key: its kind prefix and last four characters, e.g. ``sk-ant-api03-…AbCd``."""
    if len(secret) < 12:
        return "…" + secret[-2:]
    prefix = secret[: secret.index("-", 7) + 1] if secret.startswith("sk-ant-") and "-" in secret[7:] else ""
    return f"{prefix}…{secret[-4:]}"


async def ensure_default_key(session: AsyncSession, clock: Clock, *, rotate_days: int) -> None:
    """ANTHROPIC_API_KEY is key ``default`` of workspace ``default``.

    A ``failing`` default key whose variable now holds another key (the operator replaced it and restarted)
    is active again.
    """
    row = await session.scalar(select(ApiKey).where(ApiKey.label == DEFAULT_KEY_LABEL))
    secret = secret_of(DEFAULT_KEY_ENV)
    now = clock()
    if row is not None:
        if row.key_hint is None and secret and row.anthropic_key_id is None:  # the variable was unset at first start
            row.key_hint = key_hint(secret)
        if (row.status == KeyStatus.FAILING and row.env_var == DEFAULT_KEY_ENV and secret
                and row.anthropic_key_id is None and row.key_hint != key_hint(secret)):
            row.status, row.key_hint = KeyStatus.ACTIVE.value, key_hint(secret)
            add_audit(session, at=now, actor="system", action="keys.recovered", target=DEFAULT_KEY_LABEL,
                      reason=f"{DEFAULT_KEY_ENV} holds a new key")
        return
    session.add(ApiKey(label=DEFAULT_KEY_LABEL, workspace=DEFAULT_WORKSPACE, env_var=DEFAULT_KEY_ENV,
                       key_hint=key_hint(secret) if secret else None, created_at=now, rotate_days=rotate_days,
                       status=KeyStatus.ACTIVE.value))
    add_audit(session, at=now, actor="system", action="keys.add", target=DEFAULT_KEY_LABEL,
              workspace=DEFAULT_WORKSPACE, env_var=DEFAULT_KEY_ENV)


# -- the registry ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyView:
    """A key as admins see it: never the secret."""

    label: str
    workspace: str
    hint: str | None
    status: str
    env_var: str | None  # None: known from `keys sync` only, not used by Claude Gate
    env_var_set: bool  # the variable holds a value in this process
    in_use: bool  # the key requests of its workspace use now
    anthropic_id: str | None
    anthropic_name: str | None
    created_at: datetime  # when the key was made (Anthropic's date when known)
    rotate_days: int
    rotation: Rotation
    creator: str | None  # a Slack mention, an email or an Anthropic user id
    registered_by: str | None
    revoked_by: str | None
    revoked_at: datetime | None
    last_reminded_on: date | None

    @property
    def usable(self) -> bool:
        return self.status in USABLE_STATUSES

    @property
    def registered(self) -> bool:
        return self.env_var is not None


@dataclass(frozen=True)
class KeyListing(Answer):
    keys: list[KeyView]
    today: date
    remind_before_days: int
    admin_api: bool  # ANTHROPIC_ADMIN_KEY is set
    last_synced_at: datetime | None


@dataclass(frozen=True)
class KeyAdded(Answer):
    key: KeyView
    replaces: str | None  # the key the workspace used until now, if the new key takes over
    notes: list[str]


@dataclass(frozen=True)
class KeyRevoked(Answer):
    label: str
    workspace: str
    steps: list[Step]
    now_in_use: str | None  # the key the workspace uses from now on (None: requests are refused)


def slack_user_of(who: str | None) -> str | None:
    """The Slack user id in a ``created_by`` value, if it is one (not ``cli``, ``system``, an Anthropic id)."""
    return parse_user(who) if who else None


def creator_of(row: ApiKey) -> str | None:
    if row.creator_email:
        return row.creator_email
    if row.anthropic_creator_id:
        return row.anthropic_creator_id
    slack_user = slack_user_of(row.created_by)
    return mention(slack_user) if slack_user else row.created_by


def rotation_start(row: ApiKey) -> datetime:
    """When the key was made (Anthropic's date when known): its rotate-by date counts from here.

    ``created_at`` stays the registration time, which orders the keys of a workspace (the newest serves).
    """
    return row.anthropic_created_at or row.created_at


def key_view(row: ApiKey, now: datetime, zone: ZoneInfo, *, in_use: bool) -> KeyView:
    return KeyView(
        label=row.label, workspace=row.workspace, hint=row.key_hint, status=row.status, env_var=row.env_var,
        env_var_set=bool(row.env_var and secret_of(row.env_var)), in_use=in_use, anthropic_id=row.anthropic_key_id,
        anthropic_name=row.anthropic_name, created_at=rotation_start(row), rotate_days=row.rotate_days,
        rotation=rotation_of(rotation_start(row), row.rotate_days, now, zone), creator=creator_of(row),
        registered_by=row.created_by if row.env_var else None, revoked_by=row.revoked_by, revoked_at=row.revoked_at,
        last_reminded_on=row.last_reminded_on,
    )


async def keys_in_use(session: AsyncSession) -> dict[str, str]:
    """workspace → label of the key its requests use now (as `active_key` chooses)."""
    workspaces = await session.scalars(
        select(ApiKey.workspace).where(usable_key()).distinct())
    chosen: dict[str, str] = {}
    for workspace in list(workspaces):
        choice = await active_key(session, workspace)
        if choice is not None:
            chosen[workspace] = choice.label
    return chosen


class KeyRegistry(Service):
    """The registry's use cases: `keys`, `keys add`, `keys revoke` (and the App Home's list of keys)."""

    async def list_keys(self) -> KeyListing:
        """Every key: usable ones first (by workspace), then revoked and retired ones."""
        now, zone = self.clock(), ZoneInfo(self.settings.reminder_tz)
        async with self.sessions() as session:
            rows = list(await session.scalars(select(ApiKey)))
            in_use = set((await keys_in_use(session)).values())
        rows.sort(key=lambda r: (r.status not in USABLE_STATUSES, r.env_var is None, r.workspace, r.label))
        synced = [r.synced_at for r in rows if r.synced_at is not None]
        return KeyListing(keys=[key_view(r, now, zone, in_use=r.label in in_use) for r in rows],
                          today=now.astimezone(zone).date(), remind_before_days=self.settings.remind_before_days,
                          admin_api=self.settings.anthropic_admin_key is not None,
                          last_synced_at=max(synced) if synced else None)

    async def add_key(self, *, actor_id: str, label: str, env_var: str, workspace: str | None = None,
                      rotate_days: int | None = None, anthropic_id: str | None = None) -> KeyAdded:
        """Register a key whose secret is in environment variable ``env_var`` (`keys add`).

        The newest active key of a workspace serves it, so adding a key to a workspace rotates to it. With
        ANTHROPIC_ADMIN_KEY and ``anthropic_id``, Anthropic's hint, creation date and creator are recorded.
        The arguments were checked by the command grammar (bot/domain/commands.py, for Slack and the shell alike).
        Raises KeyCommandError for anything the admin can fix (a variable without an API key, a taken label, …).
        """
        workspace = workspace or DEFAULT_WORKSPACE
        rotate_days = self.settings.rotation_days if rotate_days is None else rotate_days
        secret = _registered_secret(env_var)
        notes: list[str] = []
        org_key = await _anthropic_key(self.settings, anthropic_id, notes) if anthropic_id else None
        if org_key is not None and org_key.status != KeyStatus.ACTIVE:
            raise KeyCommandError(f"Anthropic says key {code(anthropic_id)} is {org_key.status}: it cannot serve "
                                  "requests.")
        now, zone = self.clock(), ZoneInfo(self.settings.reminder_tz)
        async with self.sessions.begin() as session:
            await _refuse_duplicates(session, label, env_var, secret, anthropic_id)
            before = await active_key(session, workspace)
            row = await session.scalar(select(ApiKey).where(ApiKey.anthropic_key_id == anthropic_id)) \
                if anthropic_id else None
            if row is None:  # a key seen only by `keys sync` is adopted rather than duplicated
                row = ApiKey(anthropic_key_id=anthropic_id)
                session.add(row)
            row.label, row.workspace, row.env_var, row.rotate_days = label, workspace, env_var, rotate_days
            row.status, row.created_by, row.created_at = KeyStatus.ACTIVE.value, actor_id, now  # newest serves
            row.key_hint = (org_key.hint if org_key else None) or row.key_hint or key_hint(secret)
            if org_key is not None:
                record_org_key(row, org_key, now)
            add_audit(session, at=now, actor=actor_id, action="keys.add", target=label, workspace=workspace,
                      env_var=env_var, rotate_days=rotate_days, anthropic_id=anthropic_id)
            await session.flush()
            after = await active_key(session, workspace)
            roles = list(await session.scalars(select(RolePolicyRow.role).where(RolePolicyRow.workspace == workspace)))
            view = key_view(row, now, zone, in_use=after is not None and after.label == label)
        replaces = before.label if before is not None and view.in_use else None
        if replaces:
            notes.append(f"Workspace {code(workspace)} now uses {code(label)} instead of {code(replaces)}. Once every "
                         f"process has {code(env_var)}, stop the old key with {code(f'keys revoke {replaces}')}.")
        elif not view.in_use and after is not None:
            notes.append(f"Workspace {code(workspace)} keeps using {code(after.label)} (newer).")
        if not roles:
            notes.append(f"No role uses workspace {code(workspace)} yet: "
                         f"{code(f'/claude-admin policy set <role> workspace {workspace}')}.")
        notes.append(f"Every process that serves Claude Gate needs {code(env_var)}; a process without it skips "
                     "this key.")
        return KeyAdded(view, replaces, notes)

    async def revoke_key(self, *, actor_id: str, label: str) -> KeyRevoked:
        """Stop using key ``label`` in every process at once (`keys revoke`), then deactivate it at Anthropic.

        The local revoke is committed first and stays whatever the Admin API says; each step is reported. Running
        it again for a revoked key retries the Anthropic step. Raises KeyCommandError if there is no such key.
        It takes the key's lock (KeyGuard) first: calls whose check of this key is under way start before the revoke
        commits, and every later check, in any process, sees it revoked.
        """
        now = self.clock()
        steps: list[Step] = []
        async with KeyGuard(self.db.engine).revoking(label), self.sessions.begin() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.label == label).with_for_update())
            if row is None:
                raise KeyCommandError(f"There is no key {code(label)}. {code('keys')} lists them.")
            workspace, anthropic_id, anthropic_status = row.workspace, row.anthropic_key_id, row.anthropic_status
            if row.status == KeyStatus.REVOKED:
                when = f" on {row.revoked_at:%Y-%m-%d %H:%M} UTC" if row.revoked_at else ""
                steps.append(Step("Claude Gate", StepOutcome.DONE, f"already revoked by {row.revoked_by}{when}."))
            else:
                previous = row.status
                row.status, row.revoked_by, row.revoked_at = KeyStatus.REVOKED.value, actor_id, now
                add_audit(session, at=now, actor=actor_id, action="keys.revoke", target=label, workspace=workspace,
                          previous=previous, anthropic_id=anthropic_id)
                steps.append(Step("Claude Gate", StepOutcome.DONE, "no process uses it from now on."))
            await session.flush()
            successor = await active_key(session, workspace)
        steps.append(await self._deactivate_at_anthropic(actor_id=actor_id, label=label, anthropic_id=anthropic_id,
                                                         anthropic_status=anthropic_status))
        return KeyRevoked(label, workspace, steps, successor.label if successor else None)

    async def _deactivate_at_anthropic(self, *, actor_id: str, label: str, anthropic_id: str | None,
                                       anthropic_status: str | None) -> Step:
        if anthropic_id is None:
            return Step("Anthropic", StepOutcome.SKIPPED, "no Anthropic key id is known for it: deactivate it in the "
                        f"Console (or register keys with {code('anthropic_id=')}, or run {code('keys sync')}).")
        if anthropic_status in (KeyStatus.INACTIVE, KeyStatus.ARCHIVED, KeyStatus.EXPIRED):
            return Step("Anthropic", StepOutcome.DONE,
                        f"{code(anthropic_id)} is already {anthropic_status} at Anthropic.")
        admin = AnthropicAdmin.from_settings(self.settings)
        if admin is None:
            return Step("Anthropic", StepOutcome.SKIPPED, f"ANTHROPIC_ADMIN_KEY is not set: deactivate "
                        f"{code(anthropic_id)} in the Console.")
        try:
            async with admin:
                key = await admin.deactivate_key(anthropic_id)
        except AdminApiError as exc:
            async with self.sessions.begin() as session:
                add_audit(session, at=self.clock(), actor=actor_id, action="keys.deactivate", target=label,
                          anthropic_id=anthropic_id, outcome="failed", error=str(exc))
            return Step("Anthropic", StepOutcome.FAILED, f"{exc} The local revoke stays; run "
                        f"{code(f'keys revoke {label}')} again to retry.")
        async with self.sessions.begin() as session:
            await session.execute(update(ApiKey).where(ApiKey.anthropic_key_id == anthropic_id)
                                  .values(anthropic_status=key.status).execution_options(synchronize_session=False))
            add_audit(session, at=self.clock(), actor=actor_id, action="keys.deactivate", target=label,
                      anthropic_id=anthropic_id, outcome=key.status)
        return Step("Anthropic", StepOutcome.DONE, f"{code(anthropic_id)} is now {key.status} at Anthropic.")


def _registered_secret(env_var: str) -> str:
    """The secret of a key being registered (kept in memory only).

    Every refusal is the same sentence: whether the variable is unset, empty, a Slack token, a database URL or an
    Admin API key is not told, so `keys add` cannot be used to probe the process's environment.
    """
    secret = secret_of(env_var)
    if secret is None:
        raise KeyCommandError(NOT_AN_API_KEY)
    return secret


async def _anthropic_key(settings: Settings, anthropic_id: str, notes: list[str]) -> OrgKey | None:
    admin = AnthropicAdmin.from_settings(settings)
    if admin is None:
        return None
    try:
        async with admin:
            return await admin.get_key(anthropic_id)
    except AdminApiError as exc:
        notes.append(f"Anthropic's details were not read: {exc} {code('keys sync')} fills them in later.")
        return None


async def _refuse_duplicates(session: AsyncSession, label: str, env_var: str, secret: str,
                             anthropic_id: str | None) -> None:
    taken = await session.scalar(select(ApiKey).where(ApiKey.label == label))
    if taken is not None:
        raise KeyCommandError(f"Key {code(label)} exists already ({taken.status}). To rotate, add the new key under a "
                              f"new label (e.g. {code(f'{label}-2')}), then {code(f'keys revoke {label}')}.")
    usable = await session.scalars(
        select(ApiKey).where(usable_key()))
    for other in usable:
        assert other.env_var is not None
        if other.env_var == env_var:
            raise KeyCommandError(f"{code(env_var)} is already key {code(other.label)}.")
        if secret_of(other.env_var) == secret:
            raise KeyCommandError(f"{code(env_var)} holds the same key as {code(other.label)} ({code(other.env_var)}).")
    if anthropic_id is not None:
        same = await session.scalar(select(ApiKey).where(ApiKey.anthropic_key_id == anthropic_id))
        if same is not None and same.env_var is not None:
            raise KeyCommandError(f"Anthropic key {code(anthropic_id)} is already registered as {code(same.label)}.")


def record_org_key(row: ApiKey, key: OrgKey, now: datetime) -> None:
    """Copy what the Admin API says about a key onto its row (never a secret: Anthropic sends none)."""
    row.anthropic_name, row.anthropic_workspace_id, row.anthropic_status = key.name, key.workspace_id, key.status
    row.anthropic_creator_id = key.creator_id if key.creator_type == "user" else row.anthropic_creator_id
    row.key_hint = key.hint or row.key_hint
    row.anthropic_created_at, row.synced_at = key.created_at, now
