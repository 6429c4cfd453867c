"""Counted nouns written out: ``counted(1, "day")`` is "1 day", ``counted(3, "day")`` is "3 days"."""

from __future__ import annotations


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun in the number it takes; ``many`` for a plural that is not ``one`` + "s"."""
    return f"{n:,} {one if n == 1 else (many if many is not None else one + 's')}"
