"""The words the bot writes (bot/domain/marks.py) as Slack shows them: mrkdwn bold, code and italics, and emoji."""

from __future__ import annotations

from bot.domain.marks import CLOSE, ICONS, OPEN, Icon, Mark, render_marks

EMOJI = {
    Icon.DONE: ":white_check_mark:",
    Icon.WARNING: ":warning:",
    Icon.DENIED: ":no_entry:",
    Icon.MONEY: ":money_with_wings:",
    Icon.ALERT: ":rotating_light:",
    Icon.THUMBS_UP: ":+1:",
    Icon.THUMBS_DOWN: ":-1:",
    Icon.STOP: ":black_square_for_stop:",
}


def _render(kind: Mark, body: str) -> str:
    if kind is Mark.ICON:
        return EMOJI.get(ICONS[body], "") if body in ICONS else ""
    if not body:
        return ""
    return f"{kind.value}{body}{kind.value}"


def mrkdwn(text: str) -> str:
    """``text`` with its marks as Slack mrkdwn (``*role*``, `` `code` ``, ``_note_``, ``:warning:``)."""
    if OPEN not in text and CLOSE not in text:
        return text
    return render_marks(text, _render)
