"""Bolt registration: one module per surface, each a ``register(runtime)`` of one-line bindings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime


def register_listeners(runtime: Runtime) -> None:
    from bot.listeners import (
        access_requests,
        actions,
        assistant,
        commands,
        errors,
        events,
        groups,
        home,
        in_flight,
        middleware,
        replays,
        safe_output,
        sessions,
        shortcuts,
    )

    safe_output.register(runtime)  # first: what anything below posts pings nobody (docs/security.md)
    errors.register(runtime)
    in_flight.register(runtime)
    middleware.register(runtime)  # before every listener and the assistant middleware
    replays.register(runtime)  # a replayed command or action runs once
    conversations = events.register(runtime)
    assistant.register(runtime, conversations)  # the panel answers through the same Conversations
    shortcuts.register(runtime, conversations)  # message shortcuts too, in the asker's DM
    sessions.register(runtime)  # Slack's stop button on an answer's agent session
    actions.register(runtime)
    access_requests.register(runtime)
    commands.register(runtime)
    home.register(runtime)
    groups.register(runtime)
