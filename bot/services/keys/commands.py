"""The key, reminder and offboarding rows of `/claude-admin`: handlers of the one admin dispatcher (AdminService).

AdminService checks the caller's rights before any of these run. Each answers with its service's report (an Answer
that bot/slack/answers.py renders); a request the caller can fix raises a GateError, which the dispatcher answers.
"""

from __future__ import annotations

from bot.config import Settings
from bot.domain.commands import ParsedCommand
from bot.services.base import Caller, Handler, Service
from bot.services.keys.offboarding import Offboarded, Offboarding
from bot.services.keys.registry import KeyAdded, KeyListing, KeyRegistry, KeyRevoked
from bot.services.keys.reminders import ReminderRun, Reminders, ReminderSchedule
from bot.services.keys.sync import KeySync, OrgKeys
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database


class KeyAdministration(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.registry = KeyRegistry(db=db, settings=settings, clock=clock, slack=slack)
        self.org_keys = OrgKeys(db=db, settings=settings, clock=clock, slack=slack)
        self.reminders = Reminders(db=db, settings=settings, clock=clock, slack=slack)
        self.offboarding = Offboarding(db=db, settings=settings, clock=clock, slack=slack)

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

    async def list(self, caller: Caller, command: ParsedCommand) -> KeyListing:
        return await self.registry.list_keys()

    async def add(self, caller: Caller, command: ParsedCommand) -> KeyAdded:
        return await self.registry.add_key(actor_id=caller.user_id, label=command["label"],
                                           env_var=command["env_var"], workspace=command["workspace"],
                                           rotate_days=command["rotate_days"], anthropic_id=command["anthropic_id"])

    async def revoke(self, caller: Caller, command: ParsedCommand) -> KeyRevoked:
        return await self.registry.revoke_key(actor_id=caller.user_id, label=command["label"])

    async def sync(self, caller: Caller, command: ParsedCommand) -> KeySync:
        return await self.org_keys.sync_keys(actor_id=caller.user_id)

    async def schedule(self, caller: Caller, command: ParsedCommand) -> ReminderSchedule:
        return await self.reminders.reminder_schedule()

    async def run_reminders(self, caller: Caller, command: ParsedCommand) -> ReminderRun:
        return await self.reminders.run_reminders(actor_id=caller.user_id)

    async def offboard(self, caller: Caller, command: ParsedCommand) -> Offboarded:
        return await self.offboarding.offboard_user(actor_id=caller.user_id, actor_role=caller.role.role,
                                                    user_id=command["user"])
