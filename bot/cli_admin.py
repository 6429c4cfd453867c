"""`claude-gate <any /claude-admin subcommand>`: the same words, through the same grammar and the one dispatcher.

Every first word of the `/claude-admin` grammar (bot/domain/commands.py) that has no command of its own here gets
one, built from the grammar when the parser is: `claude-gate whois U…`, `claude-gate groups map @eng power`,
`claude-gate offboard U…`, and whatever subcommand is added to the grammar later. The shell acts as an owner and is
audited as `cli`. The answer is the one the dispatcher gives Slack, rendered for a terminal (bot/terminal.py), or
as JSON with `--json`; `--out FILE` writes it to a file instead of standard output.

Subcommands that must reach Slack (a user group's members, a person's email, a post) read SLACK_BOT_TOKEN (and
SLACK_API_URL) from the environment or .env and say so when it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.domain.commands import ADMIN, GroupRef, parse_command, subcommands_of
from bot.domain.errors import CliError, CommandError, GateError
from bot.domain.replies import Answer, Reply
from bot.domain.requests import Requester
from bot.domain.roles import Role
from bot.services.access.roles import SHELL_ACTOR
from bot.services.base import Caller
from bot.services.conversation.access import EffectiveRole
from bot.terminal import plain, render_answer

if TYPE_CHECKING:
    from bot.services.admin.dispatcher import AdminService
    from bot.store.db import Database

SHELL = Caller(Requester(user_id=SHELL_ACTOR, name="shell"), EffectiveRole(Role.OWNER, "explicit"))

# Subcommands that cannot do their work without Slack, and what they need it for.
NEEDS_SLACK = {
    "groups map": "it reads the group's members from Slack",
    "offboard": "it looks the person's email up in Slack to find their Anthropic keys",
    "reminders run": "it posts the reminders to Slack",
}


class ShellWorkspace:
    """The Workspace port for the shell. What a command sends its caller (a DM, a file) comes here: text is printed,
    a file is written (to --out FILE, else to its own name in the current directory). Everything else goes to Slack
    when SLACK_BOT_TOKEN is set; without it, notices to others are skipped (said on stderr) and lookups say they
    need it."""

    def __init__(self, slack: Any | None, out: str | None) -> None:
        self.slack = slack
        self.out = out
        self.wrote: list[str] = []

    async def send_dm(self, user_id: str, message: Any) -> None:
        if user_id == SHELL_ACTOR:
            print(_text(message))
        elif self.slack is not None:
            await self.slack.send_dm(user_id, message)
        else:
            print(f"(SLACK_BOT_TOKEN is not set: {user_id} was not sent a DM)", file=sys.stderr)

    async def post(self, channel: str, message: Any, thread_ts: str | None = None) -> None:
        if self.slack is not None:
            await self.slack.post(channel, message, thread_ts)
        else:
            print(f"(SLACK_BOT_TOKEN is not set: nothing was posted to {channel})", file=sys.stderr)

    async def deliver(self, to: str, message: Any, *, thread_ts: str | None = None) -> str | None:
        if to == SHELL_ACTOR:
            print(_text(message))
            return None
        return await self._slack("posting").deliver(to, message, thread_ts=thread_ts)

    async def upload_file(self, channel: str, *, filename: str, content: bytes, title: str | None = None,
                          comment: str | None = None, thread_ts: str | None = None) -> str:
        path = Path(self.out or Path(filename).name)
        await asyncio.to_thread(path.write_bytes, content)  # the shell's own loop: nothing else waits on it
        self.wrote.append(str(path))
        print(f"wrote {path} ({len(content):,} bytes)", file=sys.stderr)
        return f"`{path}`"

    async def user_group(self, ref: GroupRef) -> tuple[str, str | None, list[str]]:
        return await self._slack(f"looking up the user group {ref}").user_group(ref)

    async def profile(self, user_id: str) -> Requester:
        if self.slack is None:
            return Requester(user_id=user_id, known=False)
        return await self.slack.profile(user_id)

    async def email_of(self, user_id: str) -> str | None:
        return await self._slack("reading a person's email").email_of(user_id)

    async def user_by_email(self, email: str) -> str | None:
        return await self._slack("finding a person by email").user_by_email(email)

    async def channel_name(self, channel_id: str) -> str | None:
        """Checked in Slack when SLACK_BOT_TOKEN is set; without it the shell's channel ID is taken as given."""
        return None if self.slack is None else await self.slack.channel_name(channel_id)

    def _slack(self, what: str) -> Any:
        if self.slack is None:
            raise CliError(f"{what} needs Slack: set SLACK_BOT_TOKEN (and SLACK_API_URL for GovSlack) in the "
                           "environment or .env")
        return self.slack


def _text(message: Any) -> str:
    return for_the_shell(plain(message) if isinstance(message, str) else render_answer(message))


def admin_words() -> dict[str, str]:
    """Each first word of the `/claude-admin` grammar, with a one-line help made from its subcommands."""
    words: dict[str, list[str]] = {}
    for subcommand in subcommands_of(ADMIN):
        words.setdefault(subcommand.words[0], []).append(plain(subcommand.usage).removeprefix(f"{ADMIN} "))
    return {word: " · ".join(usages) for word, usages in words.items()}


def add_admin_commands(sub: Any, taken: Iterable[str]) -> None:
    """A `claude-gate` command for every first word of the grammar that has none yet."""
    taken = set(taken)
    for word, usages in admin_words().items():
        if word in taken:
            continue
        command = sub.add_parser(word, help=f"as /claude-admin: {usages}", description=f"/claude-admin {usages}")
        add_output_flags(command)
        command.add_argument("words", nargs="*", help="the same words as after /claude-admin " + word)
        command.set_defaults(handler=cmd_admin, admin_word=word)


def add_output_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="print the answer as JSON")
    command.add_argument("--out", metavar="FILE", help="write the answer to FILE instead of standard output")


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    return run_admin(settings, " ".join([args.admin_word, *args.words]), as_json=args.json, out=args.out)


def run_admin(settings: Settings, text: str, *, as_json: bool = False, out: str | None = None) -> int:
    """Parse ``text`` with the `/claude-admin` grammar and run it through the dispatcher as the shell."""
    try:
        command = parse_command(ADMIN, text)
    except CommandError as exc:
        return emit(Reply.error(exc.message, exc.usage), as_json=as_json, out=out)
    why = NEEDS_SLACK.get(command.name)
    if why and settings.slack_bot_token is None:
        raise CliError(f"{command.name} needs Slack, as {why}: set SLACK_BOT_TOKEN (and SLACK_API_URL for "
                       "GovSlack) in the environment or .env")
    from bot.cli import with_database

    async def work(db: Database) -> tuple[Answer, ShellWorkspace]:
        client = None
        slack = None
        if settings.slack_bot_token is not None:
            from bot.app import slack_client
            from bot.slack.directory import UserDirectory
            from bot.slack.workspace import SlackWorkspace

            client = slack_client(settings)
            slack = SlackWorkspace(client, UserDirectory(client, ttl_seconds=settings.user_cache_seconds))
        workspace = ShellWorkspace(slack, out)
        try:
            return await shell_admin(db, settings, workspace, client).run(SHELL, command), workspace
        finally:
            if client is not None and client.session is not None:
                await client.session.close()

    try:
        answer, workspace = with_database(settings, work)
    except CliError:
        raise
    except GateError as exc:
        return emit(Reply.error(exc.message, exc.usage), as_json=as_json, out=out)
    return emit(answer, as_json=as_json, out=None if workspace.wrote else out)


def shell_admin(db: Database, settings: Settings, workspace: Any, client: Any | None) -> AdminService:
    """The `/claude-admin` dispatcher as the shell runs it. With a Slack client (SLACK_BOT_TOKEN) an access request
    decided here updates its messages there and tells the requester; without one it is decided in the database
    only, and its messages keep their buttons until the next click there says it was decided."""
    from bot.services.access.requests import AccessRequests
    from bot.services.admin.dispatcher import AdminService
    from bot.store.clock import system_clock

    if client is not None:
        from bot.slack.access_requests import SlackRequestBoard

        board: Any = SlackRequestBoard(client)
    else:
        board = NoBoard()
    requests = AccessRequests(db=db, settings=settings, clock=system_clock, workspace=workspace, board=board)
    return AdminService(db=db, settings=settings, clock=system_clock, workspace=workspace, requests=requests)


class NoBoard:
    """The request board of a shell without SLACK_BOT_TOKEN: nothing is shown or sent."""

    async def post_request(self, destination: str, request: Any) -> None:
        return None

    async def show_request(self, channel: str, ts: str, request: Any) -> None:
        return None

    async def send_dm(self, user_id: str, text: str) -> None:
        return None


def emit(answer: Answer, *, as_json: bool, out: str | None) -> int:
    ok = not (isinstance(answer, Reply) and not answer.ok)
    text = json.dumps(answer_json(answer), indent=2, default=str) if as_json else for_the_shell(render_answer(answer))
    if out:
        Path(out).write_text(text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 2


def for_the_shell(text: str) -> str:
    """Usage lines and hints name the command as it is typed here."""
    return text.replace(f"{ADMIN} ", "claude-gate ")


def answer_json(answer: Answer) -> Any:
    """An Answer as plain JSON: its fields (dataclasses), text made plain, kind named."""

    def value(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return {f.name: value(getattr(item, f.name)) for f in dataclasses.fields(item)}
        if isinstance(item, dict):
            return {str(k): value(v) for k, v in item.items()}
        if isinstance(item, list | tuple | set | frozenset):
            return [value(v) for v in item]
        if isinstance(item, Enum):
            return item.value
        if isinstance(item, datetime | date):
            return item.isoformat()
        if isinstance(item, str):
            return plain(item)
        return item

    result = value(answer)
    return {"kind": type(answer).__name__, **result} if isinstance(result, dict) else result
