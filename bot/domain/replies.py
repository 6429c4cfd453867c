"""What a command answers, independent of Slack. Rendered by bot/slack/answers.py.

Every `/claude-admin` and `/claude` subcommand answers with an Answer: a Reply (a title, fields, lines) or a richer
report of its own service (the key list, a reminder run, an offboarding), each with its renderer in bot/slack. Their
words carry marks (bot/domain/marks.py), never Slack markup: each surface renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.marks import Icon, icon


class Answer:
    """Base of every command's result: a plain value that bot/slack/answers.py turns into Block Kit."""

    __slots__ = ()


@dataclass
class Reply(Answer):
    title: str
    lines: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    footer: str | None = None
    ok: bool = True

    @classmethod
    def error(cls, message: str, usage: str | None = None) -> Reply:
        return cls(title=f"{icon(Icon.WARNING)} {message}", footer=f"Usage: {usage}" if usage else None, ok=False)

    @classmethod
    def denied(cls, message: str) -> Reply:
        return cls(title=f"{icon(Icon.DENIED)} {message}", ok=False)

    def plain_text(self) -> str:
        parts = [self.title, *(f"{k}: {v}" for k, v in self.fields), *self.lines]
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)


MAX_LISTED = 60  # lines of a listing in one answer


def truncated(lines: list[str], limit: int = MAX_LISTED) -> list[str]:
    """The first ``limit`` lines of a listing, and how many more there are."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"…and {len(lines) - limit} more"]
