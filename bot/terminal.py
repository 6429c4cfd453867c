"""Output for a terminal: Slack mrkdwn and emoji shortcodes made plain, tables in aligned columns.

The admin services answer in the words Slack shows; the command line prints the same answers through here, so
a shell never sees `:+1:`, `*bold*` or `<@U123|ana>`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.marks import Icon, unmarked
from bot.domain.mentions import plain_mentions
from bot.domain.replies import Answer, Reply

# Shortcodes the services use, as a terminal shows them; any other shortcode is dropped.
SHORTCODES = {
    "+1": "👍", "thumbsup": "👍", "-1": "👎", "thumbsdown": "👎",
    "white_check_mark": "✓", "heavy_check_mark": "✓", "warning": "!", "no_entry": "✗", "x": "✗",
    "no_entry_sign": "✗", "hourglass": "…", "hourglass_flowing_sand": "…", "key": "", "lock": "",
    "bar_chart": "", "bell": "", "information_source": "i",
}

# The bot's icons (bot/domain/marks.py) as a terminal shows them; one without a glyph goes with the space after it
GLYPHS = {Icon.DONE: "✓", Icon.WARNING: "!", Icon.DENIED: "✗", Icon.MONEY: "", Icon.ALERT: "",
          Icon.THUMBS_UP: "👍", Icon.THUMBS_DOWN: "👎", Icon.STOP: "⏹"}

_SHORTCODE = re.compile(r"(?<![\w:]):([a-z0-9_+\-]+):(?![\w:])( ?)")
_LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|([^>]*))?>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_GROUP = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_FENCE = re.compile(r"^```\w*\n?|\n?```$", re.MULTILINE)


def plain(text: str) -> str:
    """The bot's marks (bot/domain/marks.py) and Slack mrkdwn → plain text: no icons, shortcodes, bold/italic/strike
    marks, backticks or angle-bracket references."""
    text = unmarks(text)
    text = plain_mentions(text)  # the bot's own mention tokens (bot/domain/mentions.py) as Slack's markup first
    text = _FENCE.sub("", text)
    text = text.replace("`", "")
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) and m.group(2) != m.group(1)
                     else m.group(1), text)
    text = _USER.sub(r"\1", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(2)}" if m.group(2) else m.group(1), text)
    text = _GROUP.sub(lambda m: (m.group(2) if (m.group(2) or "").startswith("@") else f"@{m.group(2)}")
                      if m.group(2) else m.group(1), text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _SHORTCODE.sub(lambda m: SHORTCODES[m.group(1)] + m.group(2) if SHORTCODES.get(m.group(1)) else "", text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _STRIKE.sub(r"\1", text)
    text = html.unescape(text)  # Slack escapes &, < and > in mrkdwn
    return "\n".join(line.rstrip() for line in text.splitlines())


def unmarks(text: str) -> str:
    """Only the bot's marks made plain (icons as this terminal's glyphs), leaving any other text as it is: for
    Claude's streamed answer, whose Markdown a terminal shows as written."""
    return unmarked(text, GLYPHS)


def table(rows: Iterable[Sequence[object]], header: Sequence[str] | None = None) -> str:
    """Rows in aligned columns, two spaces apart; the last column is not padded."""
    cells = [[plain(str(cell)) for cell in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(len(row) for row in cells))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def render_reply(reply: Reply) -> str:
    """A command's answer for a terminal: the title, its fields as aligned `name  value` rows, lines, usage."""
    parts = [plain(reply.title)]
    if reply.fields:
        parts.append(table([(f"{name}:", value) for name, value in reply.fields]))
    parts.extend(plain(line) for line in reply.lines)
    if reply.footer:
        parts.append(plain(reply.footer))
    return "\n".join(part for part in parts if part)


def render_answer(answer: Answer) -> str:
    """Any command's Answer for a terminal: a Reply directly; a service's report through its Slack rendering (the
    one bot/slack/answers.py gives Slack), so a new kind of answer prints without a renderer of its own."""
    if isinstance(answer, Reply):
        return render_reply(answer)
    from bot.slack.answers import answer_blocks

    return blocks_text(answer_blocks(answer)[1])


def blocks_text(blocks: Iterable[dict[str, Any]]) -> str:
    """Block Kit as terminal lines: headers, section texts and fields (as aligned rows), context; no buttons."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("header", "section") and isinstance(block.get("text"), dict):
            lines.append(plain(str(block["text"].get("text", ""))))
        if kind == "section" and block.get("fields"):
            rows = []
            for field_ in block["fields"]:
                name, _, value = plain(str(field_.get("text", ""))).partition("\n")
                rows.append((f"{name}:", value.replace("\n", " · ")))
            lines.append(table(rows))
        elif kind == "context":
            lines.append(plain(" · ".join(str(e.get("text", "")) for e in block.get("elements", [])
                                          if isinstance(e, dict))))
        elif kind == "rich_text":
            lines.append(plain(json_text(block)))
    return "\n".join(line for line in lines if line.strip())


def json_text(node: Any) -> str:
    """The text pieces of a rich_text block, in order."""
    if isinstance(node, dict):
        return str(node.get("text", "")) + "".join(json_text(child) for child in node.get("elements", []))
    if isinstance(node, list):
        return "".join(json_text(child) for child in node)
    return ""
