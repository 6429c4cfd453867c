"""Block Kit around Claude's answers: feedback buttons, the assistant panel's greeting, prompts and titles."""

from __future__ import annotations

import re
from typing import Any

from bot.domain.access import ChatAccess
from bot.domain.commands import whole_number
from bot.domain.words import counted

FEEDBACK_ACTION = "answer_feedback"
RATINGS = ("up", "down")
TITLE_LIMIT = 60


def feedback_blocks(record_id: int) -> list[dict[str, Any]]:
    """👍/👎 under an answer; the clicked button's value names the rating and the request record."""
    return [{
        "type": "context_actions",
        "elements": [{
            "type": "feedback_buttons",
            "action_id": FEEDBACK_ACTION,
            "positive_button": {"text": {"type": "plain_text", "text": "Good answer"},
                                "accessibility_label": "Mark this answer as good", "value": f"up:{record_id}"},
            "negative_button": {"text": {"type": "plain_text", "text": "Bad answer"},
                                "accessibility_label": "Mark this answer as bad", "value": f"down:{record_id}"},
        }],
    }]


def parse_feedback(value: str | None) -> tuple[str, int] | None:
    """``"up:42"`` → ("up", 42); anything else → None."""
    rating, _, record = (value or "").partition(":")
    number = whole_number(record, 1, 2**63 - 1)  # ASCII digits only: "²".isdigit() is true, int("²") raises
    if rating not in RATINGS or number is None:
        return None
    return rating, number


def final_answer_blocks(markdown: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A posted (not streamed) answer with buttons: Markdown goes in a markdown block, since a message's
    ``markdown_text`` cannot be combined with blocks."""
    return [{"type": "markdown", "text": markdown}, *extra]


def feedback_thanks(rating: str) -> str:
    return ("Thanks! Your :+1: is recorded." if rating == "up"
            else "Thanks, your :-1: is recorded. Asking again with more detail often helps.")


def reading_step(messages: int, files: int) -> str | None:
    """The answer's first step as a task title ("Reading the thread and 3 files"); None when nothing was read."""
    thread = "the thread" if messages else ""
    files_part = counted(files, "file") if files else ""
    if not thread and not files_part:
        return None
    return "Reading " + " and ".join(part for part in (thread, files_part) if part)


def thread_title(question: str) -> str:
    """A short, single-line title for an assistant thread, from its first question."""
    line = " ".join(question.split())
    line = re.sub(r"[*_~`>#]+", "", line).strip() or "Question for Claude"
    return line if len(line) <= TITLE_LIMIT else line[: TITLE_LIMIT - 1].rstrip() + "…"


def greeting(access: ChatAccess, name: str) -> tuple[str, list[dict[str, Any]]]:
    """(text, blocks) of the assistant panel's first message, saying what this person may do here."""
    hello = f"Hi {name}!" if name else "Hi!"
    if not access.can_chat:
        text = f"{hello} {access.reason} {access.hint}".strip()
        return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    models = ", ".join(f"`{alias}`" for alias in access.models)
    limits = (f"Your role *{access.role}* may use {models}, up to {access.max_tokens:,} tokens per answer and "
              f"{access.rpm_limit} questions a minute.")
    choice = (f" Start a message with `--model {access.models[-1]}` to pick a model for that message."
              if len(access.models) > 1 else "")
    text = f"{hello} Ask me anything: I answer right here, in this thread. {limits}{choice}"
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def question_hint(access: ChatAccess, *, mention: str | None) -> str:
    """The one line for a message with nothing to ask (only a mention, or only ``--model x``): what to ask, and
    which models this person may pick. ``mention`` is how to address the bot where a mention is needed."""
    if not access.can_chat:
        return f"{access.reason} {access.hint}".strip()
    how = f"Ask your question after {mention}, e.g. `{mention} explain this error`." if mention else (
        "Type your question, e.g. `explain this error`.")
    models = ", ".join(f"`{alias}`" for alias in access.models)
    if len(access.models) > 1:
        return f"{how} You may use {models}: start with `--model {access.models[-1]}` to pick one."
    return f"{how} Your role *{access.role}* uses {models}."


GENERAL_PROMPTS = [
    {"title": "Explain a concept", "message": "Explain how public-key cryptography works, in plain words."},
    {"title": "Draft a message", "message": "Help me write a friendly message asking my team for feedback on a "
                                            "proposal."},
    {"title": "Summarise a text", "message": "I will paste a text: summarise it in five bullet points."},
]
MODEL_PROMPTS = {
    "opus": {"title": "Think it through with Opus",
             "message": "--model opus Compare three ways to cache data in a web application, with trade-offs."},
    "sonnet": {"title": "Review code with Sonnet",
               "message": "--model sonnet Review this Python function for bugs and readability: "
                          "def mean(xs): return sum(xs) / len(xs)"},
}


CHANNEL_PROMPT = {"title": "Summarise this channel",
                  "message": "Summarise this channel: the main topics, decisions and open questions."}


def agent_prompts(access: ChatAccess) -> list[dict[str, str]]:
    """The agent DM's prompts: what the role can use, and one that reads the channel the person is viewing."""
    prompts = suggested_prompts(access)
    return [*prompts[:3], CHANNEL_PROMPT] if prompts else []


def suggested_prompts(access: ChatAccess) -> list[dict[str, str]]:
    """Up to four prompts this person can actually use: general ones, then one per stronger model they may pick."""
    if not access.can_chat:
        return []
    extra = [MODEL_PROMPTS[alias] for alias in ("opus", "sonnet") if alias in access.models and len(access.models) > 1]
    return [*extra[:1], *GENERAL_PROMPTS][:4]
