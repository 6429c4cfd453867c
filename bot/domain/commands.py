"""Command-line and slash-command grammar pieces shared by every command."""

from __future__ import annotations

import re

_USER = re.compile(r"^(?:<@(?P<mention>[UW][A-Z0-9]{2,20})(?:\|[^>]*)?>|(?P<plain>[UW][A-Z0-9]{2,20}))$")


def parse_user(text: str) -> str | None:
    """``<@U123|name>``, ``<@U123>`` or ``U123`` → ``U123``; anything else → None."""
    match = _USER.match(text.strip())
    if not match:
        return None
    return match.group("mention") or match.group("plain")
