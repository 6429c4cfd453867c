"""The one shell context every admin verb runs in: the shell as a caller, its Slack port, the dispatcher built
with them, and the shell's words for what the services write for Slack.

The shell acts as an owner and is audited as `cli` (whoever can run `claude-gate` already holds the database).
Subcommands that must reach Slack (a user group's members, a person's email, a post) read SLACK_BOT_TOKEN (and
SLACK_API_URL) from the environment or .env and say so when it is missing.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.domain.commands import ADMIN, GroupRef
from bot.domain.errors import CliError
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

# What the services write for Slack, as the shell says it (applied to plain text, after rendering).
SHELL_WORDS = (
    (f"{ADMIN} ", "claude-gate "),
    (f"{SHELL_ACTOR} (the shell)", "the shell"),
    (" #channel", " <channel>"),  # bash reads `#…` as a comment: the shell takes a name without it, or a C… ID
    (" is not a Slack user: mention them (@name) or give their ID.", " is not a Slack user ID (like U012ABCDEF)."),
    (" is not a channel: mention it (#name) or give its C… ID.",
     " is not a channel: give its name (general, without the #) or its ID (like C012ABCDEF)."),
    (" is not a user group: mention it (@handle) or give its S… ID.",
     " is not a user group: give its handle (@name) or its ID (like S012ABCDEF)."),
    ("Press Request access, or ask", "Ask"),
    (" or press Request access for ", " or ask for "),
    (", press Request access for ", ", ask for "),
    ("None: a refusal's Request access button sends one.",
     "None: people ask with the Request access button of a refusal in Slack."),
)
_OPTION = re.compile(r"\[([a-z_]+)=([^\]\s]+)\]")  # `[days=<n>]` of a usage line: `[--days <n>]` here
_USER = re.compile(r"(?<![\w<])@user\b")  # a usage's `@user`: the shell takes a Slack user ID


def for_the_shell(text: str) -> str:
    """Usage lines, hints and names as the shell spells them: `claude-gate …`, options as `--days <n>`."""
    for slack, shell in SHELL_WORDS:
        text = text.replace(slack, shell)
    text = _USER.sub("<user-id>", text)
    return _OPTION.sub(lambda m: f"[--{m.group(1).replace('_', '-')} {m.group(2)}]", text)


def shell_text(message: Any) -> str:
    """A message or an Answer as the shell prints it: plain, in the shell's words."""
    return for_the_shell(plain(message) if isinstance(message, str) else render_answer(message))


class ShellSlackPort:
    """The Slack port of the shell. What a command sends its caller (a DM, a file) comes here: text is printed,
    a file is written (to --out FILE, else to its own name in the current directory). Everything else goes to Slack
    when SLACK_BOT_TOKEN is set; without it, notices to others are skipped (said on stderr) and lookups say they
    need it."""

    def __init__(self, slack: Any | None, out: str | None) -> None:
        self.slack = slack
        self.out = out
        self.wrote: list[str] = []

    async def send_dm(self, user_id: str, message: Any) -> None:
        if user_id == SHELL_ACTOR:
            print(shell_text(message))
        elif self.slack is not None:
            await self.slack.send_dm(user_id, message)
        else:
            print(f"(SLACK_BOT_TOKEN is not set: {user_id} was not sent a DM)", file=sys.stderr)

    async def post(self, channel: str, message: Any, thread_ts: str | None = None) -> None:
        if self.slack is not None:
            await self.slack.post(channel, message, thread_ts)
        else:
            print(f"(SLACK_BOT_TOKEN is not set: nothing was posted to {channel})", file=sys.stderr)

    async def end_session(self, channel: str, thread_ts: str) -> None:
        if self.slack is not None:
            await self.slack.end_session(channel, thread_ts)

    async def deliver(self, to: str, message: Any, *, thread_ts: str | None = None) -> str | None:
        if to == SHELL_ACTOR:
            print(shell_text(message))
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

    def words(self, text: str) -> str:
        """The answer's text in the shell's words; without Slack, what Slack was not asked is said so."""
        text = for_the_shell(text)
        if self.slack is None:
            text = text.replace("Slack does not know this user; the grant is stored anyway.",
                                "Slack was not asked about this user (SLACK_BOT_TOKEN is not set); the grant is "
                                "stored.")
        return text


@asynccontextmanager
async def shell_service(db: Database, settings: Settings, out: str | None = None
                        ) -> AsyncIterator[tuple[AdminService, ShellSlackPort]]:
    """The `/claude-admin` dispatcher as the shell runs it, with its Slack port. With a Slack client
    (SLACK_BOT_TOKEN) an access request decided here updates its messages there and tells the requester; without
    one it is decided in the database only, and its messages keep their buttons until the next click there says it
    was decided."""
    async with slack_api(settings) as (api, client):
        slack = ShellSlackPort(api, out)
        yield shell_admin(db, settings, slack, client), slack


@asynccontextmanager
async def slack_api(settings: Settings) -> AsyncIterator[tuple[Any | None, Any | None]]:
    """Slack's port and client for the shell when SLACK_BOT_TOKEN is set, else (None, None); closed after."""
    if settings.slack_bot_token is None:
        yield None, None
        return
    from bot.app import slack_client
    from bot.slack.directory import UserDirectory
    from bot.slack.slack_port import SlackApiPort

    client = slack_client(settings)
    try:
        yield SlackApiPort(client, UserDirectory(client, ttl_seconds=settings.user_cache_seconds)), client
    finally:
        if client.session is not None:
            await client.session.close()


def shell_admin(db: Database, settings: Settings, slack: Any, client: Any | None) -> AdminService:
    """The dispatcher built with the shell's port, and Slack's request board when there is a client."""
    from bot.services.access.requests import AccessRequests
    from bot.services.admin.dispatcher import AdminService
    from bot.store.clock import system_clock

    if client is not None:
        from bot.slack.access_requests import SlackRequestBoard

        board: Any = SlackRequestBoard(client)
    else:
        board = NoBoard()
    requests = AccessRequests(db=db, settings=settings, clock=system_clock, slack=slack, board=board)
    return AdminService(db=db, settings=settings, clock=system_clock, slack=slack, requests=requests)


class NoBoard:
    """The request board of a shell without SLACK_BOT_TOKEN: nothing is shown or sent."""

    async def post_request(self, destination: str, request: Any) -> None:
        return None

    async def show_request(self, channel: str, ts: str, request: Any) -> None:
        return None

    async def send_dm(self, user_id: str, text: str) -> None:
        return None
