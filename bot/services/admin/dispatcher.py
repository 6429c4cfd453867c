"""`/claude-admin`: the one dispatcher of every subcommand. It checks the caller's rights (here, not in the
listener), answers `help`, and composes the handler tables of the capabilities (each package's commands.py, in the
one list of AdminService): nothing else registers a handler.

Each handler returns an Answer (a Reply, or the report of its service, rendered by bot/slack/answers.py). Bad input
never reaches a handler (the grammar refuses it); a handler raises a GateError for what the caller can fix, which
``run`` answers as one line (a Denied is audited as `denied` first); every change is audited in the same
transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from bot.config import Settings
from bot.domain.commands import ADMIN, ParsedCommand, subcommands_of
from bot.domain.errors import Denied, GateError
from bot.domain.marks import code, strong
from bot.domain.replies import Answer, Reply
from bot.domain.requests import Requester
from bot.domain.roles import Right, has_right
from bot.services.access.commands import AccessCommands
from bot.services.access.requests import AccessRequests
from bot.services.base import Caller, Handler, Service
from bot.services.channels.commands import ChannelCommands
from bot.services.conversation.access import effective_role
from bot.services.data.audit import add_audit
from bot.services.data.commands import DataCommands
from bot.services.keys.commands import KeyAdministration
from bot.services.ports import SlackPort
from bot.services.spend.commands import SpendCommands
from bot.store.clock import Clock
from bot.store.db import Database

log = logging.getLogger(__name__)


class Capability(Protocol):
    """A capability's `/claude-admin` rows: its commands.py maps each subcommand name it owns to its handler."""

    def handlers(self) -> dict[str, Handler]: ...


def compose(own: dict[str, Handler], capabilities: Sequence[Capability]) -> dict[str, Handler]:
    """One table of every `/claude-admin` subcommand: exactly one handler each, from exactly one capability (or
    the dispatcher itself). Raises ValueError at construction for a doubled, missing or unknown name."""
    table = dict(own)
    for capability in capabilities:
        for name, handler in capability.handlers().items():
            if name in table:
                raise ValueError(f"`{name}` has two handlers (the second from {type(capability).__name__})")
            table[name] = handler
    grammar = {sub.name for sub in subcommands_of(ADMIN)}
    if missing := grammar - table.keys():
        raise ValueError(f"no handler for {', '.join(sorted(missing))}")
    if unknown := table.keys() - grammar:
        raise ValueError(f"handlers for subcommands the grammar does not know: {', '.join(sorted(unknown))}")
    return table


class AdminService(Service):
    """Built with what its capabilities need: the service's four, and the access requests (whose board shows
    them in Slack, or in nothing for the shell without a bot token)."""

    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort,
                 requests: AccessRequests) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.capabilities: tuple[Capability, ...] = (
            AccessCommands(db=db, settings=settings, clock=clock, slack=slack, requests=requests),
            KeyAdministration(db=db, settings=settings, clock=clock, slack=slack),
            SpendCommands(db=db, settings=settings, clock=clock, slack=slack),
            DataCommands(db=db, settings=settings, clock=clock, slack=slack),
            ChannelCommands(db=db, settings=settings, clock=clock, slack=slack),
        )
        self.handlers = compose({"help": self.help}, self.capabilities)

    async def caller(self, requester: Requester) -> Caller:
        async with self.reads() as session:
            role = await effective_role(session, requester.user_id, self.settings.default_role, self.clock())
        return Caller(requester, role)

    async def run(self, caller: Caller, command: ParsedCommand) -> Answer:
        right = command.subcommand.right
        if right is not None and not self.trusted(caller, right):
            return await self.deny(caller, command.name, None, f"{code(command.name)} needs a role with "
                                   f"{right.value.replace('_', ' ')} rights; yours is {strong(caller.role.role)}.")
        try:
            return await self.handlers[command.name](caller, command)
        except Denied as exc:
            target = exc.target if exc.target is not None else command["user"]
            return await self.deny(caller, command.name, target, exc.message)
        except GateError as exc:
            # a subcommand that takes arguments shows its usage with the error: the fix is in what was typed
            usage = exc.usage or (command.subcommand.usage if command.subcommand.params else None)
            return Reply.error(exc.message, usage)

    def trusted(self, caller: Caller, right: Right) -> bool:
        """Admin rights need a known, internal, non-guest, human Slack account (a bot given a grant has none)."""
        asker = caller.requester
        return (has_right(caller.role.role, right) and asker.known and not asker.is_external and not asker.is_guest
                and not asker.is_bot)

    async def deny(self, caller: Caller, action: str, target: str | None, message: str) -> Reply:
        async with self.sessions.begin() as session:
            add_audit(session, at=self.clock(), actor=caller.user_id, action="denied", target=target,
                      command=action, role=caller.role.role.value, reason=message)
        return Reply.denied(message)

    # -- help -------------------------------------------------------------------------------------------
    async def help(self, caller: Caller, _command: ParsedCommand) -> Reply:
        lines = [f"{sub.usage} — {sub.summary}" for sub in subcommands_of(ADMIN)
                 if sub.right is None or self.trusted(caller, sub.right)]
        footer = None if len(lines) > 1 else "Ask an admin or owner for more rights."
        return Reply(f"Claude Gate admin commands for {strong(caller.role.role)}", lines=lines, footer=footer)
