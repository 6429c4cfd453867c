"""The key, reminder and offboarding rows of `/claude-admin`: handlers of the one admin dispatcher (AdminService).

AdminService checks the caller's rights before any of these run. Each answers with its service's report (an Answer
that bot/slack/answers.py renders); a request the caller can fix raises a GateError, which the dispatcher answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.commands import ParsedCommand
from bot.services.base import Service
from bot.services.keys import offboarding, reminders
from bot.services.keys import registry as keys
from bot.services.keys import sync as key_sync
from bot.store.clock import Clock

if TYPE_CHECKING:
    from bot.services.admin.dispatcher import Caller, Handler


class KeyAdministration(Service):
    @property
    def context(self) -> tuple[async_sessionmaker[AsyncSession], Clock, Settings]:
        return self.sessions, self.clock, self.settings

    def handlers(self) -> dict[str, Handler]:
        return {
            "keys": self.list,
            "keys add": self.add,
            "keys revoke": self.revoke,
            "keys sync": self.sync,
            "reminders": self.schedule,
            "reminders run": self.run_reminders,
            "offboard": self.offboard,
        }

    async def list(self, caller: Caller, command: ParsedCommand) -> keys.KeyListing:
        return await keys.list_keys(*self.context)

    async def add(self, caller: Caller, command: ParsedCommand) -> keys.KeyAdded:
        return await keys.add_key(*self.context, actor_id=caller.user_id, label=command["label"],
                                  env_var=command["env_var"], workspace=command["workspace"],
                                  rotate_days=command["rotate_days"], anthropic_id=command["anthropic_id"])

    async def revoke(self, caller: Caller, command: ParsedCommand) -> keys.KeyRevoked:
        return await keys.revoke_key(*self.context, actor_id=caller.user_id, label=command["label"])

    async def sync(self, caller: Caller, command: ParsedCommand) -> key_sync.KeySync:
        return await key_sync.sync_keys(*self.context, actor_id=caller.user_id)

    async def schedule(self, caller: Caller, command: ParsedCommand) -> reminders.ReminderSchedule:
        return await reminders.reminder_schedule(*self.context)

    async def run_reminders(self, caller: Caller, command: ParsedCommand) -> reminders.ReminderRun:
        return await reminders.run_reminders(*self.context, self.workspace, actor_id=caller.user_id)

    async def offboard(self, caller: Caller, command: ParsedCommand) -> offboarding.Offboarded:
        return await offboarding.offboard_user(*self.context, self.workspace, actor_id=caller.user_id,
                                               actor_role=caller.role.role, user_id=command["user"])
