"""Bolt registration: one module per surface, each a ``register(gate)`` of one-line bindings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import ClaudeGate


def register_listeners(gate: ClaudeGate) -> None:
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
    )

    safe_output.register(gate)  # first: what anything below posts pings nobody (PRODUCT §2)
    errors.register(gate)
    in_flight.register(gate)
    middleware.register(gate)  # before every listener and the assistant middleware
    replays.register(gate)  # a replayed command or action runs once
    conversations = events.register(gate)
    assistant.register(gate, conversations)  # the panel answers through the same Conversations
    actions.register(gate)
    access_requests.register(gate)
    commands.register(gate)
    home.register(gate)
    groups.register(gate)
