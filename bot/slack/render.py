"""Block Kit for what the gate says to people (kept apart from handlers)."""

from __future__ import annotations

from typing import Any

from bot.domain.decisions import Refusal
from bot.domain.replies import Reply


def refusal_blocks(refusal: Refusal) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, blocks) for an ephemeral refusal: why, and what to do."""
    text = f":no_entry: {refusal.message} {refusal.hint}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":no_entry: {refusal.message}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": refusal.hint}]},
    ]
    return text, blocks


MAX_BLOCKS = 48  # Slack allows 50 per message / view section budget
SECTION_CHARS = 2900  # a section's text may hold 3,000
FIELD_CHARS = 1900  # a field may hold 2,000
FIELDS_PER_SECTION = 10


def reply_blocks(reply: Reply) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, Block Kit) for a command's Reply, always within Slack's block limits."""
    blocks: list[dict[str, Any]] = [_section(reply.title)]
    for start in range(0, len(reply.fields), FIELDS_PER_SECTION):
        chunk = reply.fields[start:start + FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{name.strip('*')}*\n{value}", FIELD_CHARS)} for name, value in chunk]})
    text = ""
    for line in reply.lines:
        line = _cut(line, SECTION_CHARS)
        if text and len(text) + len(line) + 1 > SECTION_CHARS:
            blocks.append(_section(text))
            text = ""
        text = f"{text}\n{line}" if text else line
    if text:
        blocks.append(_section(text))
    if len(blocks) > MAX_BLOCKS:
        dropped = len(blocks) - MAX_BLOCKS + 1
        blocks = [*blocks[:MAX_BLOCKS - 1], _section(f"…{dropped} more section(s) not shown")]
    if reply.footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(reply.footer, 2900)}]})
    return _cut(reply.plain_text(), 3000), blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_CHARS)}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
