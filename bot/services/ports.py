"""What services need from Slack, as two small ports: SlackPort (implemented in bot/slack/slack_port.py) and the
RequestBoard of access requests (bot/slack/access_requests.py).

Services never import slack_sdk, slack_bolt or bot.slack: they call this protocol with plain values, and messages
are text or an Answer (bot/domain/replies.py) that the Slack side renders. Calls that may fail in a way the caller
reports raise SlackCallFailed (a GateError whose ``reason`` is Slack's error code, or the kind of network failure);
``send_dm`` and ``post`` are best effort and never raise (a notice that cannot be delivered never undoes what it
reports).
"""

from __future__ import annotations

from typing import Protocol

from bot.domain.access_requests import AccessRequestView
from bot.domain.commands import GroupRef
from bot.domain.errors import ChannelNotFound as ChannelNotFound
from bot.domain.errors import GateError
from bot.domain.errors import UserGroupNotFound as UserGroupNotFound
from bot.domain.replies import Answer
from bot.domain.requests import Requester

Message = str | Answer


class SlackCallFailed(GateError):
    """Slack refused a call (``reason``: its error code, e.g. ``not_in_channel``) or could not be reached."""

    code = "slack"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Slack refused the call ({reason}).")
        self.reason = reason


class SlackPort(Protocol):
    async def send_dm(self, user_id: str, message: Message) -> None:
        """Tell a user something privately; failures are logged, never raised."""

    async def post(self, channel: str, message: Message, thread_ts: str | None = None) -> None:
        """Post in a channel (or a thread of it); failures are logged, never raised."""

    async def end_session(self, channel: str, thread_ts: str) -> None:
        """Move the thread's agent session out of ``processing`` (to ``active``); failures are logged, never
        raised."""

    async def deliver(self, to: str, message: Message, *, thread_ts: str | None = None) -> str | None:
        """Post in a channel, or DM a user (``to`` a user id); the message's ts. Raises SlackCallFailed."""

    async def upload_file(self, channel: str, *, filename: str, content: bytes, title: str | None = None,
                          comment: str | None = None, thread_ts: str | None = None) -> str:
        """Share a file in a channel (or a thread of it), or in a person's DM with the bot (``channel`` a user id);
        where it went, as the caller reads it ("your DM with me as `name`"). Raises SlackCallFailed."""

    async def user_group(self, ref: GroupRef) -> tuple[str, str | None, list[str]]:
        """(id, handle, member ids) of a user group; raises UserGroupNotFound."""

    async def profile(self, user_id: str) -> Requester:
        """The user's profile as the gate sees it (unknown → ``known=False``)."""

    async def email_of(self, user_id: str) -> str | None:
        """The email on the user's Slack profile (None without one, or without ``users:read.email``). Raises
        SlackCallFailed when the profile cannot be read."""

    async def user_by_email(self, email: str) -> str | None:
        """The Slack user id with this email. Raises SlackCallFailed (``users_not_found``: nobody has it)."""

    async def channel_name(self, channel_id: str) -> str | None:
        """The channel's name; None when it cannot be checked (no Slack connection). Raises ChannelNotFound."""


class RequestBoard(Protocol):
    """Where access requests are shown to approvers, with their Approve/Deny buttons (bot/slack/access_requests.py)."""

    async def post_request(self, destination: str, request: AccessRequestView) -> tuple[str, str] | None:
        """Post a request with its Approve/Deny buttons to a channel or a user's DM; (channel, ts) or None."""

    async def show_request(self, channel: str, ts: str, request: AccessRequestView) -> None:
        """Update a posted copy to the request's current state (failures are logged, never raised)."""

    async def send_dm(self, user_id: str, text: str) -> None:
        """Tell a user something privately (failures are logged, never raised)."""
