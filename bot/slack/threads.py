"""Reading a Slack thread as conversation turns (the bot's own messages become assistant turns)."""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import Turn
from bot.slack.directory import UserDirectory

MAX_THREAD_MESSAGES = 500


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


async def thread_turns(client: AsyncWebClient, directory: UserDirectory, *, channel: str, thread_ts: str,
                       before_ts: str) -> list[Turn]:
    """Messages of the thread older than ``before_ts`` (the message being answered), oldest first."""
    home = await directory.installation()
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(messages) < MAX_THREAD_MESSAGES:
        response = await client.conversations_replies(channel=channel, ts=thread_ts, cursor=cursor, limit=200)
        messages.extend(response.get("messages") or [])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not response.get("has_more", True):
            break
    turns: list[Turn] = []
    for message in messages:
        if float(message.get("ts", "0")) >= float(before_ts) or message.get("subtype") == "message_deleted":
            continue
        own = message.get("bot_id") == home.bot_id or (home.bot_user_id and message.get("user") == home.bot_user_id)
        text = strip_mention(message.get("text") or "", home.bot_user_id)
        if own:
            turns.append(Turn("assistant", text))
        elif message.get("bot_id"):
            continue  # other bots' chatter is not part of the conversation
        else:
            user = message.get("user") or ""
            turns.append(Turn("user", text, await directory.display_name(user) if user else ""))
    return turns
