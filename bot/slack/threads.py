"""Reading a Slack thread as conversation turns (the bot's own messages become assistant turns)."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.conversation import Turn
from bot.slack.directory import UserDirectory
from bot.slack.safe_text import neutralise

log = logging.getLogger(__name__)

MAX_THREAD_MESSAGES = 500
MAX_MENTIONS_LOOKED_UP = 20  # per message: the others read as their IDs (a message can hold hundreds)
# Subtypes that are still someone speaking; others (joins, deletions, the assistant thread's root…) are not.
SPOKEN_SUBTYPES = frozenset({"thread_broadcast", "file_share", "bot_message", "me_message"})

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


def unescape(text: str) -> str:
    """Slack escapes exactly these three characters in message text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


async def readable_text(text: str, directory: UserDirectory, bot_user_id: str | None) -> str:
    """Slack's message markup as a person reads it: the bot mention removed, `<@U…>` → `@name`, channels,
    groups and links spelled out, `&lt;`/`&gt;`/`&amp;` decoded (so code in a question reaches Claude intact).

    What a person typed literally (`&lt;!channel&gt;`, which Slack shows as text) is neutralised after decoding,
    so it reaches Claude, and any echo of it, as the plain text it was, never as a live broadcast."""
    text = strip_mention(text, bot_user_id)
    mentioned = list(dict.fromkeys(_USER_MENTION.findall(text)))[:MAX_MENTIONS_LOOKED_UP]
    names = {user: await directory.display_name(user) for user in mentioned}
    text = _USER_MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@group", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) and m.group(2) != m.group(1)
                     else m.group(1), text)
    return neutralise(unescape(text))


async def thread_turns(client: AsyncWebClient, directory: UserDirectory, *, channel: str, thread_ts: str,
                       before_ts: str, files: list[Any] | None = None) -> list[Turn]:
    """Messages of the thread older than ``before_ts`` (the message being answered), oldest first. The file
    objects people shared in them are added to ``files``, oldest first."""
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
        subtype = message.get("subtype")
        if float(message.get("ts", "0")) >= float(before_ts) or (subtype and subtype not in SPOKEN_SUBTYPES):
            continue
        own = message.get("bot_id") == home.bot_id or (home.bot_user_id and message.get("user") == home.bot_user_id)
        text = await readable_text(message.get("text") or "", directory, home.bot_user_id)
        if own:
            turns.append(Turn("assistant", text))
        elif message.get("bot_id"):
            continue  # other bots' chatter is not part of the conversation
        else:
            user = message.get("user") or ""
            turns.append(Turn("user", text, await directory.display_name(user) if user else ""))
            if files is not None and isinstance(message.get("files"), list):
                files.extend(message["files"])
    return turns


CHANNEL_DIGEST_MESSAGES = 100  # the latest messages of a channel read for "summarise this channel"


async def channel_digest(client: AsyncWebClient, directory: UserDirectory, channel: str) -> str:
    """The latest messages of ``channel``, oldest first, one ``name: text`` line each (the bot's own included)."""
    response = await client.conversations_history(channel=channel, limit=CHANNEL_DIGEST_MESSAGES)
    home = await directory.installation()
    lines: list[str] = []
    for message in reversed(response.get("messages") or []):
        subtype = message.get("subtype")
        if subtype and subtype not in SPOKEN_SUBTYPES:
            continue
        text = await readable_text(message.get("text") or "", directory, home.bot_user_id)
        if not text.strip():
            continue
        user = message.get("user") or ""
        own = message.get("bot_id") == home.bot_id or (home.bot_user_id and user == home.bot_user_id)
        who = "Claude Gate" if own else (await directory.display_name(user) if user else "a bot")
        lines.append(f"{who}: {text}")
    return "\n".join(lines)


async def both_members(client: AsyncWebClient, *, channel: str, user_id: str) -> bool:
    """Whether the bot and ``user_id`` are both members of ``channel`` (False when Slack will not say)."""
    try:
        return await _both_members(client, channel=channel, user_id=user_id)
    except SlackApiError as exc:
        log.info("could not check the members of %s: %s", channel, exc.response.get("error"))
        return False


async def _both_members(client: AsyncWebClient, *, channel: str, user_id: str) -> bool:
    info = (await client.conversations_info(channel=channel)).get("channel") or {}
    if not info.get("is_member"):
        return False
    cursor: str | None = None
    for _ in range(20):  # 20 pages of 1,000 members
        response = await client.conversations_members(channel=channel, cursor=cursor, limit=1000)
        if user_id in (response.get("members") or []):
            return True
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return False
