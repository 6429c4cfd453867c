"""Block Kit for what the gate says to people (kept apart from handlers)."""

from __future__ import annotations

from typing import Any

from bot.domain.decisions import Refusal


def refusal_blocks(refusal: Refusal) -> tuple[str, list[dict[str, Any]]]:
    """(plain-text fallback, blocks) for an ephemeral refusal: why, and what to do."""
    text = f":no_entry: {refusal.message} {refusal.hint}"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":no_entry: {refusal.message}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": refusal.hint}]},
    ]
    return text, blocks
