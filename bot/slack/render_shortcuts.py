"""Message shortcuts' Slack side: their manifest entries, the message they were used on, the question modal and the
root message of the answer in the asker's DM (kept apart from the handlers in bot/listeners/shortcuts.py)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from bot.domain.mentions import channel_link
from bot.slack.payloads import SLACK_ID, SLACK_TS
from bot.slack.safe_text import neutralise

ASK_CALLBACK = "ask_claude_about_message"
SUMMARISE_CALLBACK = "summarise_thread"
QUESTION_VIEW = "ask_claude_question"  # the modal's callback_id (its view_submission)
QUESTION_BLOCK = "question"
QUESTION_ACTION = "question_text"

# features.shortcuts of the manifest (Slack's app manifest reference: name, type, callback_id ≤ 255 characters,
# description ≤ 150)
SHORTCUTS: tuple[dict[str, str], ...] = (
    {"name": "Ask Claude about this message", "type": "message", "callback_id": ASK_CALLBACK,
     "description": "Ask Claude a question about this message; the answer comes in your DM with Claude Gate."},
    {"name": "Summarise this thread", "type": "message", "callback_id": SUMMARISE_CALLBACK,
     "description": "A summary of this message's thread, in your DM with Claude Gate."},
)

METADATA_LIMIT = 3000  # a view's private_metadata (Slack's view reference)
QUESTION_LIMIT = 3000  # a plain_text_input's max_length
QUOTE_LIMIT = 2800  # what a section shows of the message (a section's text may hold 3,000)
TITLE_LIMIT = 24  # a modal's title, submit and close
ROOT_QUOTE_LIMIT = 600  # what the DM's root message quotes of a long message
EMPTY_QUESTION = "Write what you would like to know about this message."


@dataclass(frozen=True)
class QuotedMessage:
    """The message a shortcut was used on: where it is, its thread, who wrote it and its text as a person reads it
    (mentions as names, neutralised). ``cut``: the text was shortened to fit a view's private_metadata."""

    channel_id: str
    ts: str
    thread_ts: str
    author: str = ""
    text: str = ""
    cut: bool = False

    def metadata(self) -> str:
        """The view's private_metadata (at most METADATA_LIMIT characters: a long text is shortened)."""
        encoded = json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))
        if len(encoded) <= METADATA_LIMIT:
            return encoded
        room = len(self.text) - (len(encoded) - METADATA_LIMIT) - 8  # "…" and the escapes json adds
        while room > 0:
            shorter = QuotedMessage(self.channel_id, self.ts, self.thread_ts, self.author,
                                    self.text[:room].rstrip() + "…", cut=True)
            encoded = json.dumps(asdict(shorter), ensure_ascii=False, separators=(",", ":"))
            if len(encoded) <= METADATA_LIMIT:
                return encoded
            room -= len(encoded) - METADATA_LIMIT + 8
        return json.dumps(asdict(QuotedMessage(self.channel_id, self.ts, self.thread_ts, self.author, "…", cut=True)),
                          separators=(",", ":"))

    @classmethod
    def from_metadata(cls, metadata: Any) -> QuotedMessage | None:
        try:
            fields = json.loads(metadata) if isinstance(metadata, str) else None
        except ValueError:
            return None
        if not isinstance(fields, dict):
            return None
        quoted = located(fields.get("channel_id"), fields.get("ts"), fields.get("thread_ts"))
        author, text = fields.get("author", ""), fields.get("text", "")
        if quoted is None or not isinstance(author, str) or not isinstance(text, str):
            return None
        return cls(*quoted, author=author, text=neutralise(text), cut=fields.get("cut") is True)


def located(channel: Any, ts: Any, thread_ts: Any) -> tuple[str, str, str] | None:
    """(channel, ts, thread_ts) when they are a Slack channel ID and timestamps, else None."""
    thread_ts = thread_ts or ts
    if not (isinstance(channel, str) and SLACK_ID.fullmatch(channel) and channel[:1] in ("C", "G")):
        return None  # a shortcut on a DM's message has nothing to gate by a channel's rules: not offered
    if not all(isinstance(value, str) and SLACK_TS.fullmatch(value) for value in (ts, thread_ts)):
        return None
    return channel, ts, thread_ts


def shortcut_message(body: dict[str, Any]) -> tuple[str, str, str, str, str] | None:
    """(channel, ts, thread_ts, author's user ID, raw text) of a ``message_action`` payload, else None."""
    message, channel = body.get("message"), body.get("channel")
    if not isinstance(message, dict) or not isinstance(channel, dict):
        return None
    where = located(channel.get("id"), message.get("ts"), message.get("thread_ts"))
    text, author = message.get("text") or "", message.get("user") or ""
    if where is None or not isinstance(text, str) or not isinstance(author, str):
        return None
    return (*where, author, text)


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as a mrkdwn quote, neutralised, at most ``limit`` characters of it."""
    text = neutralise(text.strip()) or "(no text)"
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return "\n".join(f"> {line}" for line in text.split("\n"))


def written_by(message: QuotedMessage) -> str:
    who = f"{neutralise(message.author)} " if message.author else ""
    return f"{who}in {channel_link(message.channel_id)}"


def question_modal(message: QuotedMessage) -> dict[str, Any]:
    """The modal asking what to ask about ``message``, which travels in its private_metadata."""
    return {
        "type": "modal",
        "callback_id": QUESTION_VIEW,
        "title": {"type": "plain_text", "text": "Ask Claude"},
        "submit": {"type": "plain_text", "text": "Ask"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": message.metadata(),
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"A message by {written_by(message)}:"}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": quote(message.text)}},
            {"type": "input", "block_id": QUESTION_BLOCK,
             "label": {"type": "plain_text", "text": "Your question"},
             "element": {"type": "plain_text_input", "action_id": QUESTION_ACTION, "multiline": True,
                         "max_length": QUESTION_LIMIT,
                         "placeholder": {"type": "plain_text", "text": "What would you like to know?"}}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "The answer comes in your DM with me, under the rules of that channel.")}]},
        ],
    }


def submitted_question(view: dict[str, Any]) -> str:
    """What was typed in the modal's question field ("" when nothing was)."""
    values = ((view.get("state") or {}).get("values") or {}).get(QUESTION_BLOCK) or {}
    field = values.get(QUESTION_ACTION) if isinstance(values, dict) else None
    value = field.get("value") if isinstance(field, dict) else None
    return value.strip() if isinstance(value, str) else ""


def ask_root(message: QuotedMessage, question: str) -> tuple[str, list[dict[str, Any]]]:
    """(fallback, blocks) of the DM message the answer to ``question`` about ``message`` goes under."""
    asked = neutralise(question)
    lead = f"You asked about a message by {written_by(message)}:"
    return f"{lead} {asked}", [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{lead}\n{quote(message.text, ROOT_QUOTE_LIMIT)}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Your question:*\n{quote(asked)}"}},
    ]


def summary_root(message: QuotedMessage) -> tuple[str, list[dict[str, Any]]]:
    """(fallback, blocks) of the DM message a thread's summary goes under."""
    lead = f"A summary of the thread of this message by {written_by(message)}:"
    return lead, [{"type": "section", "text": {"type": "mrkdwn",
                                               "text": f"{lead}\n{quote(message.text, ROOT_QUOTE_LIMIT)}"}}]


def message_for_claude(message: QuotedMessage) -> str:
    """The quoted message as Claude reads it, before the question."""
    where = f"channel {channel_link(message.channel_id)}"
    by = f" by {message.author}" if message.author else ""
    shortened = " (shortened)" if message.cut else ""
    return f"A message{by} in {where}{shortened}:\n\n{quote(message.text, len(message.text) + 1)}"
