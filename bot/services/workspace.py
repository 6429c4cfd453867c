"""What the admin services need from Slack, as a small protocol (implemented in bot/slack/workspace.py)."""

from __future__ import annotations

from typing import Protocol

from bot.domain.commands import GroupRef
from bot.domain.errors import UserGroupNotFound as UserGroupNotFound
from bot.domain.requests import Requester


class Workspace(Protocol):
    async def send_dm(self, user_id: str, text: str) -> None:
        """Tell a user something privately; failures are logged, never raised."""

    async def user_group(self, ref: GroupRef) -> tuple[str, str | None, list[str]]:
        """(id, handle, member ids) of a user group; raises UserGroupNotFound."""

    async def profile(self, user_id: str) -> Requester:
        """The user's profile as the gate sees it (unknown → ``known=False``)."""
