"""What a command answers, independent of Slack: a title, fields, lines. Rendered by bot/slack/render."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Reply:
    title: str
    lines: list[str] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    footer: str | None = None
    ok: bool = True

    @classmethod
    def error(cls, message: str, usage: str | None = None) -> Reply:
        return cls(title=f":warning: {message}", footer=f"Usage: {usage}" if usage else None, ok=False)

    @classmethod
    def denied(cls, message: str) -> Reply:
        return cls(title=f":no_entry: {message}", ok=False)

    def plain_text(self) -> str:
        parts = [self.title, *(f"{k}: {v}" for k, v in self.fields), *self.lines]
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)
