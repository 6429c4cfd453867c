"""The channel rows of `/claude-admin`: channels, and channel <#channel> [change].

The dispatcher (bot/services/admin/dispatcher.py) checks the caller's rights before these run; showing and changing
one channel's settings is ChannelService's (bot/services/channels/channel_settings.py).
"""

from __future__ import annotations

from bot.config import Settings
from bot.domain.channels import ChannelChange, ChannelRef
from bot.domain.commands import ParsedCommand
from bot.domain.marks import code
from bot.domain.replies import Reply, truncated
from bot.domain.words import counted
from bot.services.base import Caller, Handler, Service
from bot.services.channels.channel_settings import ChannelService, configured_channels, summary_line
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database


class ChannelCommands(Service):
    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.channels = ChannelService(db=db, settings=settings, clock=clock, slack=slack)

    def handlers(self) -> dict[str, Handler]:
        return {"channels": self.list_channels, "channel": self.channel}

    async def list_channels(self, _caller: Caller, _command: ParsedCommand) -> Reply:
        async with self.sessions() as session:
            channels = await configured_channels(session)
        lines = truncated([summary_line(channel) for channel in channels])
        return Reply(f"{counted(len(channels), 'channel')} with their own settings",
                     lines=lines or ["None: Claude answers in every channel it is in, by each person's role."],
                     footer=code("/claude-admin channel #channel") + " shows one; DMs follow only the role.")

    async def channel(self, caller: Caller, command: ParsedCommand) -> Reply:
        ref: ChannelRef = command["channel"]
        change: ChannelChange | None = command["change"]
        if change is None:
            return await self.channels.show(ref)
        return await self.channels.change(caller.user_id, ref, change)
