"""`keys sync`: record every organisation key the Admin API lists, so reminders cover keys the bot does not use."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select

from bot.domain.keys import RETIRED_AT_ANTHROPIC, KeyStatus, label_for_imported_key
from bot.domain.replies import Answer
from bot.services.base import Service
from bot.services.data.audit import add_audit
from bot.services.keys.admin_api import AdminApiError, AnthropicAdmin, OrgKey, OrgUser
from bot.services.keys.choice import USABLE_STATUSES
from bot.services.keys.registry import KeyCommandError, record_org_key
from bot.store.models import ApiKey

log = logging.getLogger(__name__)

NO_ADMIN_KEY = ("This needs ANTHROPIC_ADMIN_KEY: an Admin API key (sk-ant-admin…) from Console → Settings → "
                "Admin keys, set on the bot's processes.")


@dataclass(frozen=True)
class KeySync(Answer):
    pages: int  # Admin API pages read
    seen: int  # organisation keys listed
    added: list[str] = field(default_factory=list)  # labels of keys recorded for the first time
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)  # keys Claude Gate used that Anthropic no longer accepts
    missing: list[str] = field(default_factory=list)  # known ids the listing no longer has
    notes: list[str] = field(default_factory=list)


class OrgKeys(Service):
    """`keys sync`: the organisation's keys as the Admin API lists them."""

    async def sync_keys(self, *, actor_id: str) -> KeySync:
        """Page through the organisation's keys and record id, name, workspace, hint, creator, created_at, status.

        A key Claude Gate uses that Anthropic reports inactive, archived or expired stops being used. Raises
        KeyCommandError without ANTHROPIC_ADMIN_KEY or when the Admin API fails (nothing is changed then).
        """
        admin = AnthropicAdmin.from_settings(self.settings)
        if admin is None:
            raise KeyCommandError(NO_ADMIN_KEY)
        notes: list[str] = []
        try:
            async with admin:
                listing = await admin.list_keys()
                users = await _creators(admin, listing.keys, notes)
        except AdminApiError as exc:
            raise KeyCommandError(str(exc)) from exc
        now = self.clock()
        result = KeySync(pages=listing.pages, seen=len(listing.keys), notes=notes)
        async with self.sessions.begin() as session:
            rows = list(await session.scalars(select(ApiKey).with_for_update()))
            by_id = {row.anthropic_key_id: row for row in rows if row.anthropic_key_id}
            taken = {row.label for row in rows}
            local_workspace = {row.anthropic_workspace_id: row.workspace for row in rows
                               if row.env_var is not None and row.anthropic_workspace_id}
            for key in listing.keys:
                row = by_id.get(key.id)
                if row is None:
                    row = _new_row(key, taken, local_workspace, self.settings.rotation_days)
                    session.add(row)
                    taken.add(row.label)
                    result.added.append(row.label)
                else:
                    result.updated.append(row.label)
                    if row.env_var is not None and row.status in USABLE_STATUSES and key.status in RETIRED_AT_ANTHROPIC:
                        row.status = key.status
                        result.retired.append(row.label)
                        add_audit(session, at=now, actor=actor_id, action="keys.retired", target=row.label,
                                  anthropic_id=key.id, anthropic_status=key.status)
                    elif row.env_var is None and row.status != KeyStatus.REVOKED:
                        row.status = key.status
                record_org_key(row, key, now)
                user = users.get(key.creator_id or "")
                row.creator_email = user.email if user else row.creator_email
            listed = {key.id for key in listing.keys}
            result.missing.extend(row.label for row in rows
                                  if row.anthropic_key_id and row.anthropic_key_id not in listed)
            add_audit(session, at=now, actor=actor_id, action="keys.sync", pages=listing.pages, seen=len(listing.keys),
                      added=len(result.added), updated=len(result.updated), retired=result.retired,
                      missing=result.missing)
        return result


async def _creators(admin: AnthropicAdmin, keys: list[OrgKey], notes: list[str]) -> dict[str, OrgUser]:
    """Anthropic user id → user, for keys created by users (to DM them about rotation)."""
    if not any(key.creator_type == "user" for key in keys):
        return {}
    try:
        return {user.id: user for user in await admin.list_users()}
    except AdminApiError as exc:
        notes.append(f"Creators' emails were not read: {exc}")
        return {}


def _new_row(key: OrgKey, taken: set[str], local_workspace: dict[str, str], rotate_days: int) -> ApiKey:
    """A key Claude Gate does not use (no environment variable): recorded for the list and the reminders."""
    workspace = local_workspace.get(key.workspace_id or "") or (key.workspace_id or "organization")[:64]
    return ApiKey(label=label_for_imported_key(key.name, key.id, taken), workspace=workspace, env_var=None,
                  anthropic_key_id=key.id, created_at=key.created_at, rotate_days=rotate_days, status=key.status)
