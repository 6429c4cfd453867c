"""How Slack could read text the bot posts: the broadcasts, mentions and disguised links in it.

A deliberately suspicious reader, for the output-safety tests: it reads every shown string of a payload both as
mrkdwn and as Markdown, as written and with one level of HTML entities decoded, and reports anything that would
notify someone or show a link under a label other than its address. ``allowed`` names the mentions the bot's own
templates make (``@U…``, ``!subteam^S…``, ``#C…``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

ENTITY = re.compile(r"&(lt|gt|amp|#0*60|#0*62|#0*38|#x0*3c|#x0*3e|#x0*26);", re.I)
DECODED = {"lt": "<", "gt": ">", "amp": "&", "#60": "<", "#62": ">", "#38": "&", "#x3c": "<", "#x3e": ">",
           "#x26": "&"}
ANGLE = re.compile(r"<([^<>]*)>")
OPENER = re.compile(r"<[!@#]")
MARKDOWN_LINK = re.compile(r"\]\(")
DEFINITION = re.compile(r"^[ \t>]*(?:(?:[*+\-]|\d{1,9}[.)])[ \t]+)?[ \t>]*\[[^\]\n]+\]:[ \t]*\n?[ \t]*<?"
                        r"(?:[A-Za-z][A-Za-z0-9+.\-]*:|www\.)", re.M)
BARE = re.compile(r"(?<!\w)@(here|channel|everyone)(?!\w)", re.I)
NOT_SHOWN = frozenset({"channel", "ts", "thread_ts", "user", "user_id", "recipient_user_id", "recipient_team_id",
                       "team_id", "action_id", "block_id", "value", "url", "image_url", "response_url",
                       "trigger_id", "type", "style", "token", "private_metadata", "metadata", "view_id", "id"})


def decode_once(text: str) -> str:
    return ENTITY.sub(lambda m: DECODED[re.sub(r"#(x?)0*", r"#\1", m.group(1).lower())], text)


def problems(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """What in ``text`` could notify someone or disguise a link."""
    allowed = set(allowed)
    found: list[str] = []
    for reading in {text, decode_once(text)}:
        for match in ANGLE.finditer(reading):
            body = match.group(1)
            if body[:1] and body[0] in "!@#":
                target = body.split("|", 1)[0][1:]
                if target.removeprefix("subteam^") not in allowed or target.startswith(("here", "channel", "every")):
                    found.append(f"mention or broadcast {match.group(0)!r}")
            elif "|" in body:
                address, label = body.split("|", 1)
                if address and not any(c.isspace() for c in address) and label.strip() not in ("", address):
                    found.append(f"link {address!r} shown as {label!r}")
        for opener in OPENER.finditer(reading):  # not closed: Slack might still read it up to a later ">"
            if not ANGLE.match(reading, opener.start()):
                found.append(f"open mention {reading[opener.start():opener.start() + 20]!r}")
        found += [f"Markdown link at {m.start()}" for m in MARKDOWN_LINK.finditer(reading)]
        found += [f"link definition {m.group(0)!r}" for m in DEFINITION.finditer(reading)]
        found += [f"bare {m.group(0)!r}" for m in BARE.finditer(reading)]
    if "\ue000" in text or "\ue001" in text:
        found.append("a mention token reached Slack")
    return found


def shown_strings(payload: Any, key: str | None = None) -> list[str]:
    """Every string of a Slack payload that a person could see."""
    if key in NOT_SHOWN:
        return []
    if isinstance(payload, str):
        try:
            parsed = json.loads(payload) if payload[:1] in "[{" else None
        except ValueError:
            parsed = None
        return shown_strings(parsed) if parsed is not None else [payload]
    if isinstance(payload, dict):
        return [s for k, v in payload.items() for s in shown_strings(v, k)]
    if isinstance(payload, list):
        return [s for item in payload for s in shown_strings(item)]
    return []


def payload_problems(payloads: Iterable[Any], allowed: Iterable[str] = ()) -> list[str]:
    return [p for payload in payloads for text in shown_strings(payload) for p in problems(text, allowed)]
