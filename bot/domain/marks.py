"""Emphasis, code and icons in the words the bot writes, for no surface in particular.

The domain and the services write ``strong(role)``, ``code("/claude-admin keys")``, ``emphasis(note)`` and
``icon(Icon.DONE)`` inside ordinary strings (f-strings included). Each is a short mark: private-use characters
around a kind and its text, which every surface renders its own way: Slack as mrkdwn and emoji
(bot/slack/mrkdwn.py, applied on the way out to everything posted), the terminal as plain text (bot/terminal.py).
So no Slack markup, and no emoji shortcode, is written outside bot/slack. A mark may hold a mention
(bot/domain/mentions.py) or another mark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum

OPEN, CLOSE = "\ue002", "\ue003"  # private-use characters around a mark (mentions use \ue000 and \ue001)


class Icon(StrEnum):
    """What an answer's or a notice's first symbol says; each surface draws its own."""

    DONE = "done"  # a change was made
    WARNING = "warning"  # bad input, or something to look at
    DENIED = "denied"  # not allowed
    MONEY = "money"  # a budget notice
    ALERT = "alert"  # a security notice (a secret in a prompt)
    THUMBS_UP = "thumbsup"  # feedback: a good answer
    THUMBS_DOWN = "thumbsdown"  # feedback: a poor answer
    STOP = "stop"  # an answer stopped with Slack's stop button


class Mark(StrEnum):
    STRONG = "*"
    CODE = "`"
    EMPHASIS = "_"
    ICON = "!"


# the innermost marks first: a body holds no other mark's characters
MARKED = re.compile(f"{OPEN}([*`_!])([^{OPEN}{CLOSE}]*){CLOSE}")
STRAY = re.compile(f"[{OPEN}{CLOSE}]")


def _mark(kind: Mark, text: object) -> str:
    return f"{OPEN}{kind.value}{text}{CLOSE}"


def strong(text: object) -> str:
    """Bold in Slack, plain in a terminal: names the admin chose (a role, a label) and the words that matter."""
    return _mark(Mark.STRONG, text)


def code(text: object) -> str:
    """A command, a value to type, a model id: code in Slack, plain in a terminal."""
    return _mark(Mark.CODE, text)


def emphasis(text: object) -> str:
    """Italics in Slack (a note about the message itself), plain in a terminal."""
    return _mark(Mark.EMPHASIS, text)


def icon(kind: Icon) -> str:
    """The symbol an answer starts with (an emoji in Slack, ✓ ! ✗ or nothing in a terminal)."""
    return _mark(Mark.ICON, kind.value)


_ICON_MARK = re.compile(f"{OPEN}!([a-z]+){CLOSE}( ?)")
ICONS = {icon.value: icon for icon in Icon}


def unmarked(text: str, glyphs: Mapping[Icon, str] | None = None) -> str:
    """``text`` with its marks as plain words: each icon as its glyph in ``glyphs`` (none: the icon goes, with the
    space after it), every other mark as its text. For a terminal (bot/terminal.py, with its glyphs) and for what
    is stored (the audit log)."""
    def glyph(match: re.Match[str]) -> str:
        shown = (glyphs or {}).get(ICONS[match.group(1)], "") if match.group(1) in ICONS else ""
        return shown + match.group(2) if shown else ""

    if OPEN not in text and CLOSE not in text:
        return text
    return render_marks(_ICON_MARK.sub(glyph, text), lambda kind, body: "" if kind is Mark.ICON else body)


def render_marks(text: str, render: Callable[[Mark, str], str]) -> str:
    """``text`` with every mark replaced by ``render(kind, body)``, innermost first; stray mark characters go."""
    if OPEN not in text:
        return STRAY.sub("", text) if CLOSE in text else text
    while True:
        done = MARKED.sub(lambda m: render(Mark(m.group(1)), m.group(2)), text)
        if done == text:
            return STRAY.sub("", done)
        text = done
