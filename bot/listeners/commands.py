"""`/claude-admin` and `/claude`: ack at once, parse, run the service, answer ephemerally.

Both are acknowledged by a listener middleware, before Bolt starts the listener. A listener that acks itself runs
in a task of its own, and Bolt waits for the ack by polling every 10 ms: with hundreds of answers streaming on the
same loop that cost each command 2-3 loop turns, and the p99 of the ack beyond 100 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.domain.commands import ADMIN, SELF, CommandError, parse_command
from bot.domain.replies import Reply
from bot.services.admin import Answer
from bot.slack.render import reply_blocks

if TYPE_CHECKING:
    from bot.app import ClaudeGate

log = logging.getLogger(__name__)


def register(gate: ClaudeGate) -> None:
    commands = SlashCommands(gate)
    gate.bolt.command(ADMIN, middleware=[ack_at_once])(commands.on_admin)
    gate.bolt.command(SELF, middleware=[ack_at_once])(commands.on_self)


async def ack_at_once(ack: AsyncAck, next: Callable[[], Awaitable[None]]) -> None:
    """The empty ack Slack needs within 3 s; the answer follows through ``respond``."""
    await ack()
    await next()


class SlashCommands:
    def __init__(self, gate: ClaudeGate) -> None:
        self.gate = gate

    async def on_admin(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        await self._answer(respond, command, self._run_admin)

    async def on_self(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        await self._answer(respond, command, self._run_self)

    async def _run_admin(self, command: dict[str, Any]) -> Answer:
        parsed = parse_command(ADMIN, command.get("text") or "")
        requester = await self.gate.directory.requester(command["user_id"])
        caller = await self.gate.admin.caller(requester)
        return await self.gate.admin.run(caller, parsed)

    async def _run_self(self, command: dict[str, Any]) -> Reply:
        parsed = parse_command(SELF, command.get("text") or "")
        requester = await self.gate.directory.requester(command["user_id"])
        return await self.gate.personal.run(requester, parsed)

    async def _answer(self, respond: AsyncRespond, command: dict[str, Any], run: Any) -> None:
        try:
            reply = await run(command)
        except CommandError as exc:
            reply = Reply.error(exc.message, exc.usage)
        except Exception:
            log.exception("%s %r failed for %s", command.get("command"), command.get("text"), command.get("user_id"))
            reply = Reply.error("Something went wrong on my side. Please try again.")
        text, blocks = reply_blocks(reply) if isinstance(reply, Reply) else reply
        try:
            await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        except Exception:
            log.exception("could not answer %s for %s", command.get("command"), command.get("user_id"))
