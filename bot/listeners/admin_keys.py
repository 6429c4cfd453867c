"""The key, reminder and offboarding rows of `/claude-admin`, plugged into the admin dispatcher.

AdminService checks the caller's rights before any of these run; they call the key services and answer with
the Block Kit of bot/slack/render_keys.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.domain.commands import ParsedCommand
from bot.services import key_sync, keys, offboarding, reminders
from bot.services.admin import Caller
from bot.services.roles import RoleChangeDenied
from bot.slack import render_keys
from bot.slack.render_keys import Rendered

if TYPE_CHECKING:
    from bot.app import ClaudeGate


def register(gate: ClaudeGate) -> None:
    handlers = KeyCommands(gate)
    gate.admin.register("keys", handlers.list)
    gate.admin.register("keys add", handlers.add)
    gate.admin.register("keys revoke", handlers.revoke)
    gate.admin.register("keys sync", handlers.sync)
    gate.admin.register("reminders", handlers.schedule)
    gate.admin.register("reminders run", handlers.run_reminders)
    gate.admin.register("offboard", handlers.offboard)


class KeyCommands:
    def __init__(self, gate: ClaudeGate) -> None:
        self.gate = gate
        self.context = (gate.sessions, gate.clock, gate.settings)

    async def list(self, caller: Caller, command: ParsedCommand) -> Rendered:
        return render_keys.key_list(await keys.list_keys(*self.context))

    async def add(self, caller: Caller, command: ParsedCommand) -> Rendered:
        try:
            added = await keys.add_key(*self.context, actor_id=caller.user_id, label=command["label"],
                                       env_var=command["env_var"], workspace=command["workspace"],
                                       rotate_days=command["rotate_days"], anthropic_id=command["anthropic_id"])
        except keys.KeyCommandError as exc:
            return render_keys.key_error(str(exc), command.subcommand.usage)
        return render_keys.key_added(added)

    async def revoke(self, caller: Caller, command: ParsedCommand) -> Rendered:
        try:
            revoked = await keys.revoke_key(*self.context, actor_id=caller.user_id, label=command["label"])
        except keys.KeyCommandError as exc:
            return render_keys.key_error(str(exc), command.subcommand.usage)
        return render_keys.key_revoked(revoked)

    async def sync(self, caller: Caller, command: ParsedCommand) -> Rendered:
        try:
            synced = await key_sync.sync_keys(*self.context, actor_id=caller.user_id)
        except keys.KeyCommandError as exc:
            return render_keys.key_error(str(exc))
        return render_keys.key_sync(synced)

    async def schedule(self, caller: Caller, command: ParsedCommand) -> Rendered:
        return render_keys.reminder_schedule(await reminders.reminder_schedule(*self.context))

    async def run_reminders(self, caller: Caller, command: ParsedCommand) -> Rendered:
        try:
            run = await reminders.run_reminders(*self.context, self.gate.client, actor_id=caller.user_id)
        except keys.KeyCommandError as exc:
            return render_keys.key_error(str(exc))
        return render_keys.reminder_run(run)

    async def offboard(self, caller: Caller, command: ParsedCommand) -> Rendered:
        try:
            result = await offboarding.offboard_user(*self.context, self.gate.client, actor_id=caller.user_id,
                                                     actor_role=caller.role.role, user_id=command["user"])
        except keys.KeyCommandError as exc:
            if isinstance(exc.__cause__, RoleChangeDenied):
                denied = await self.gate.admin.deny(caller, "offboard", command["user"], str(exc))
                return denied.title, []
            return render_keys.key_error(str(exc), command.subcommand.usage)
        return render_keys.offboarded(result)
