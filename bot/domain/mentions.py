"""Mentions the bot means to make, in text that may also hold words it did not write.

Everything the bot posts is neutralised on its way to Slack (bot/slack/safe_text.py): a `<@U…>`, `<!channel>` or
`<https://…|label>` written by Claude, a user, an admin or a key's name at Anthropic pings nobody and disguises
nothing. A mention that one of the bot's own templates means ("Ask <@U…>") is written with these functions: a
token that only this process can write (it carries a random key made at start-up), which the same step turns into
the live mention. Text with a token is for posting from this process; store IDs, never rendered text.
"""

from __future__ import annotations

import re
import secrets

_KEY = secrets.token_hex(8)
OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters around a token
_ID = re.compile(r"[A-Z0-9]{1,40}")
TOKEN = re.compile(OPEN + _KEY + r"([@#]|!subteam\^)([A-Z0-9]{1,40})" + CLOSE)
# Anything that looks like a token (a forged one, one from another process, or a token cut in half): never live
TOKEN_LIKE = re.compile(OPEN + r"[0-9a-f]{0,16}(?:([@#]|!subteam\^)([A-Z0-9]{0,40}))?" + CLOSE + "?|" + CLOSE)


def _token(kind: str, slack_id: str) -> str:
    if not _ID.fullmatch(slack_id):  # not a Slack ID: plain text, never a mention
        return slack_id
    return f"{OPEN}{_KEY}{kind}{slack_id}{CLOSE}"


def mention(user_id: str) -> str:
    """``<@U…>`` in a message the bot writes."""
    return _token("@", user_id)


def group_mention(group_id: str) -> str:
    """``<!subteam^S…>`` in a message the bot writes."""
    return _token("!subteam^", group_id)


def channel_link(channel_id: str) -> str:
    """``<#C…>`` in a message the bot writes."""
    return _token("#", channel_id)


def live_tokens(text: str) -> list[tuple[str, str]]:
    """``text`` cut at this process's tokens: [(text before, Slack markup of the token)], the last with ""."""
    parts: list[tuple[str, str]] = []
    start = 0
    for match in TOKEN.finditer(text):
        parts.append((text[start:match.start()], f"<{match.group(1)}{match.group(2)}>"))
        start = match.end()
    parts.append((text[start:], ""))
    return parts


def mention_ids(text: str) -> str:
    """What is stored, never rendered: each of this process's tokens as its bare ID, anything token-like too."""
    return TOKEN_LIKE.sub(lambda m: m.group(2) or "", TOKEN.sub(lambda m: m.group(2), text))


def plain_mentions(text: str) -> str:
    """For a terminal: this process's tokens as Slack's markup (``<@U…>``), anything token-like as its ID."""
    text = TOKEN.sub(lambda m: f"<{m.group(1)}{m.group(2)}>", text)
    return TOKEN_LIKE.sub(lambda m: m.group(2) or "", text)
