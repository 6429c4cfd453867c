"""`claude-gate chat --as U… <text>`: ask Claude as a Slack user, through the same gate, the answer streamed here."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from bot.cli.base import quiet_closed_stdout, require_database, user_id
from bot.cli.context import for_the_shell
from bot.config import Settings
from bot.domain.errors import CliError
from bot.terminal import plain, unmarks


def add_chat_command(sub: Any) -> None:
    chat = sub.add_parser("chat", help="ask Claude as a Slack user, through the same gate")
    chat.add_argument("--as", dest="user", required=True, help="Slack user ID to act as")
    chat.add_argument("--model", help="alias or model ID for this message")
    chat.add_argument("text", nargs="+")
    chat.set_defaults(handler=cmd_chat)


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    if settings.anthropic_api_key is None:
        raise CliError("Missing setting ANTHROPIC_API_KEY: an API key from console.anthropic.com → API keys.")
    settings.require_workspace_key()
    from bot.store.migrate import upgrade_database

    text = " ".join(args.text).strip()
    if not text:
        raise CliError("nothing to ask: put the question after the options, e.g. "
                       "`claude-gate chat --as U012ABCDEF \"explain this error\"`")
    user = user_id(args.user)
    require_database(settings)
    upgrade_database(settings.database_url)
    return asyncio.run(_chat(settings, user, text, args.model))


class TerminalAnswer:
    """An AnswerSink that prints to the terminal as the answer streams. A reader that goes (`| head -c 12`) ends
    the printing quietly; the answer is still finished and recorded."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            quiet_closed_stdout()

    async def append(self, text: str) -> None:
        self.write(unmarks(text))  # Claude's Markdown as written; the service's own notes (marks) made plain

    async def finish(self) -> None:
        self.write("\n")

    async def fail(self, note: str) -> None:
        self.write(f"\n{for_the_shell(plain(note))}\n")


async def _chat(settings: Settings, user: str, text: str, model: str | None) -> int:
    from bot.app import build_app
    from bot.domain.decisions import Refusal
    from bot.domain.requests import ChatRequest, Requester

    runtime = build_app(settings)
    try:
        await runtime.start()
        await runtime.hold_lease()  # its record carries this process: if it dies mid-answer, others close it
        if settings.slack_bot_token is not None:
            requester = await runtime.directory.requester(user)
        else:
            print("(SLACK_BOT_TOKEN unset: guest and Slack Connect checks skipped)", file=sys.stderr)
            requester = Requester(user_id=user, name=user)
        request = ChatRequest(requester=requester, text=text, model=model, surface="cli", channel_name="a terminal")

        async def no_history() -> list[Any]:
            return []

        sink = TerminalAnswer()
        result = await runtime.chat.answer(request, no_history, sink)
        if isinstance(result.decision, Refusal):
            refusal = f"refused: {result.decision.message} {result.decision.hint}".strip()
            print(for_the_shell(plain(refusal)), file=sys.stderr)
            return 3
        if sink.closed:
            return 128 + signal.SIGPIPE
        return 1 if result.failure else 0
    finally:
        await runtime.close()
