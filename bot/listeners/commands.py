"""`/claude-admin` and `/claude`: ack at once, parse, run the service, answer ephemerally.

Both are acknowledged by a listener middleware, before Bolt starts the listener. A listener that acks itself runs
in a task of its own, and Bolt waits for the ack by polling every 10 ms: with hundreds of answers streaming on the
same loop that cost each command 2-3 loop turns, and the p99 of the ack beyond 100 ms.

Bad command text raises CommandError (a GateError): bot/listeners/errors.py answers it, with the usage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.domain.commands import ADMIN, SELF, parse_command
from bot.domain.replies import Answer
from bot.listeners.replays import first_run
from bot.services.schedules.service import SCHEDULE_COMMANDS
from bot.slack.answers import answer_blocks
from bot.slack.directory import LazyRequester

if TYPE_CHECKING:
    from bot.runtime import Runtime


def register(runtime: Runtime) -> None:
    commands = SlashCommands(runtime)
    runtime.bolt.command(ADMIN, middleware=[ack_at_once])(commands.on_admin)
    runtime.bolt.command(SELF, middleware=[ack_at_once])(commands.on_self)


async def ack_at_once(ack: AsyncAck, next: Callable[[], Awaitable[None]]) -> None:
    """The empty ack Slack needs within 3 s; the answer follows through ``respond``."""
    await ack()
    await next()


class SlashCommands:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_admin(self, command: dict[str, Any], requester: LazyRequester, respond: AsyncRespond) -> None:
        if not await first_run(self.runtime, command):  # a replay (the same trigger_id) is acked and does nothing
            return
        parsed = parse_command(ADMIN, command.get("text") or "")
        caller = await self.runtime.admin.caller(await requester.resolve())
        await self.answer(respond, await self.runtime.admin.run(caller, parsed))

    async def on_self(self, command: dict[str, Any], requester: LazyRequester, respond: AsyncRespond) -> None:
        if not await first_run(self.runtime, command):
            return
        parsed = parse_command(SELF, command.get("text") or "")
        if parsed.name in SCHEDULE_COMMANDS:
            await self.answer(respond, await self.runtime.schedules.run(await requester.resolve(), parsed,
                                                                        channel_id=command.get("channel_id")))
            return
        await self.answer(respond, await self.runtime.personal.run(await requester.resolve(), parsed))

    @staticmethod
    async def answer(respond: AsyncRespond, answer: Answer) -> None:
        text, blocks = answer_blocks(answer)
        await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
