"""Who is asking and what for, as plain values (built from Slack payloads by the listeners)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# "summarise this channel", "what happened in the current channel?": the DM asks about the channel in view
VIEWED_CHANNEL_REQUEST = re.compile(r"\b(?:this|the current|the open)\s+channel\b", re.IGNORECASE)
# Surfaces answered in a channel thread others can read; the thread is remembered with the admission, so that the
# asker may follow up there without a mention (THREAD_FOLLOW_UPS)
CHANNEL_SURFACES = frozenset({"mention", "follow_up"})


@dataclass(frozen=True)
class Requester:
    user_id: str
    team_id: str | None = None
    name: str = ""
    known: bool = True  # False when users.info failed: fail closed
    is_external: bool = False  # Slack Connect: another organisation
    is_guest: bool = False  # is_restricted / is_ultra_restricted
    is_bot: bool = False
    email: str | None = None
    tz: str | None = None  # the IANA time zone of their Slack profile (users.info ``tz``), e.g. "America/New_York"


@dataclass(frozen=True)
class ChatRequest:
    requester: Requester
    text: str
    model: str | None = None  # from `--model <alias>` for this message only
    surface: str = "mention"  # mention / dm / assistant / cli
    channel_id: str | None = None
    channel_name: str | None = None
    thread_ts: str | None = None
    # What the gate claims so the request is answered once: the Slack message (``message_claim``), since one message
    # comes under several event ids (a retry; an app_mention and a message.channels event for the same message)
    event_id: str | None = None
    # Set by screening (SECRET_POLICY): ``text`` is then redacted, and these are the kinds of credential it held
    secrets: tuple[str, ...] = ()
    screened: bool = False


def message_claim(channel_id: str, ts: str) -> str:
    """The claim of one Slack message (channel and ts), at most 64 characters like any event claim."""
    return _claim("msg", f"{channel_id}:{ts}")


def trigger_claim(trigger_id: str) -> str:
    """The claim of one slash command or interaction: Slack gives each a new ``trigger_id``; a replay reuses it."""
    return _claim("trigger", trigger_id)


def _claim(kind: str, key: str) -> str:
    claim = f"{kind}:{key}"
    return claim if len(claim) <= 64 else f"{kind}#" + hashlib.sha256(claim.encode()).hexdigest()[: 63 - len(kind)]


def split_model_flag(text: str) -> tuple[str | None, str]:
    """``--model opus rest of text`` → ("opus", "rest of text"); otherwise (None, text)."""
    stripped = text.lstrip()
    if not stripped.startswith("--model"):
        return None, text
    parts = stripped.split(maxsplit=2)
    if parts[0] != "--model" and not parts[0].startswith("--model="):
        return None, text
    if parts[0].startswith("--model="):
        return parts[0].split("=", 1)[1] or None, " ".join(parts[1:])
    if len(parts) < 2:
        return None, text
    return parts[1], parts[2] if len(parts) > 2 else ""


def asks_about_viewed_channel(text: str) -> bool:
    """Whether a DM asks about the channel the person is looking at ("summarise this channel")."""
    return VIEWED_CHANNEL_REQUEST.search(text) is not None
