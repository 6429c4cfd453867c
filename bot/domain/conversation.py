"""Turning a Slack thread into Claude's alternating user/assistant messages, within a token budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.domain.errors import AnswerNotDelivered as AnswerNotDelivered

CHARS_PER_TOKEN = 4  # a deliberately rough estimate, used only for trimming
CONTEXT_WINDOW_TOKENS = 200_000  # every current Claude model (haiku, sonnet, opus)



@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    text: str
    speaker: str = ""
    blocks: tuple[dict[str, Any], ...] = field(default=())  # files (image, document, text blocks) of a user turn
    pdf_pages: int = 0  # pages of the PDF documents among ``blocks``, counted when they were read


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def build_messages(history: list[Turn], budget_tokens: int) -> list[dict[str, Any]]:
    """Alternating messages ending with the last user turn, oldest turns dropped first to fit the budget.

    Speakers are named when more than one person speaks in the thread, so Claude can tell them apart. Files go
    before the text of the last user message, as content blocks (they are not trimmed: the budget is for text).
    """
    files = [block for turn in history if turn.role == "user" for block in turn.blocks]
    turns = [t for t in history if t.text.strip()]
    humans = {t.speaker for t in turns if t.role == "user"}
    named = len(humans) > 1
    merged: list[dict[str, Any]] = []
    for turn in turns:
        text = f"{turn.speaker}: {turn.text}" if named and turn.role == "user" and turn.speaker else turn.text
        if merged and merged[-1]["role"] == turn.role:
            merged[-1]["content"] += "\n\n" + text
        else:
            merged.append({"role": turn.role, "content": text})
    while merged and merged[-1]["role"] != "user":
        merged.pop()
    total = sum(estimate_tokens(m["content"]) for m in merged)
    while len(merged) > 1 and total > budget_tokens:
        total -= estimate_tokens(merged.pop(0)["content"])
        if merged and merged[0]["role"] == "assistant":
            total -= estimate_tokens(merged.pop(0)["content"])
    if merged and estimate_tokens(merged[-1]["content"]) > budget_tokens:
        keep = budget_tokens * CHARS_PER_TOKEN
        merged[-1]["content"] = "…" + merged[-1]["content"][-keep:]
    while merged and merged[0]["role"] != "user":
        merged.pop(0)
    if files and merged:
        merged[-1] = {"role": "user", "content": [*files, {"type": "text", "text": merged[-1]["content"]}]}
    elif files:
        merged = [{"role": "user", "content": [*files, {"type": "text", "text": "(see the attached files)"}]}]
    return merged


def history_budget(configured: int, *, max_tokens: int, system: str,
                   context_window: int = CONTEXT_WINDOW_TOKENS) -> int:
    """Tokens the conversation may use: the configured budget, never more than the model's window leaves
    after the system prompt and the answer."""
    return max(1, min(configured, context_window - max_tokens - estimate_tokens(system)))


def system_prompt(template: str, *, user_name: str, channel: str) -> str:
    return template.replace("{user_name}", user_name or "a colleague").replace("{channel}", channel or "Slack")
