"""Block Kit for what the gate says to people (kept apart from handlers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.domain.decisions import Refusal
from bot.domain.replies import Reply
from bot.domain.words import counted
from bot.slack.access_requests import request_button


def refusal_blocks(refusal: Refusal) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, blocks) for an ephemeral refusal: why, and what to do."""
    text = f":no_entry: {refusal.message} {refusal.hint}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":no_entry: {refusal.message}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": refusal.hint}]},
    ]
    if refusal.request_role is not None:
        blocks.append(request_button(refusal.request_role))
    return text, blocks


MAX_BLOCKS = 48  # Slack allows 50 per message / view section budget
SECTION_CHARS = 2900  # a section's text may hold 3,000
FIELD_CHARS = 1900  # a field may hold 2,000
FIELDS_PER_SECTION = 10


Block = dict[str, Any]


def reply_blocks(reply: Reply) -> tuple[str, list[Block]]:
    """(plain-text fallback, Block Kit) for a command's Reply, always within Slack's block limits."""
    blocks: list[Block] = [section(reply.title)]
    for start in range(0, len(reply.fields), FIELDS_PER_SECTION):
        chunk = reply.fields[start:start + FIELDS_PER_SECTION]
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{name.strip('*')}*\n{value}", FIELD_CHARS)} for name, value in chunk]})
    blocks = capped([*blocks, *sections(reply.lines)], MAX_BLOCKS)
    if reply.footer:
        blocks.append(context(reply.footer))
    return _cut(reply.plain_text(), 3000), blocks


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_CHARS)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, SECTION_CHARS)}]}


def sections(lines: Iterable[str]) -> list[Block]:
    """Lines packed into as few sections as fit Slack's section limit."""
    blocks: list[Block] = []
    text = ""
    for line in lines:
        line = _cut(line, SECTION_CHARS)
        if text and len(text) + len(line) + 1 > SECTION_CHARS:
            blocks.append(section(text))
            text = ""
        text = f"{text}\n{line}" if text else line
    if text:
        blocks.append(section(text))
    return blocks


def capped(blocks: list[Block], limit: int = 50) -> list[Block]:
    """At most ``limit`` blocks, the last saying how many were left out."""
    if len(blocks) <= limit:
        return blocks
    hidden = counted(len(blocks) - limit + 1, "more section", "more sections")
    return [*blocks[: limit - 1], context(f"…{hidden} not shown")]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
