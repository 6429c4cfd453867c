"""Bolt registration: one module per surface, each a ``register(gate)`` of one-line bindings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import ClaudeGate


def register_listeners(gate: ClaudeGate) -> None:
    from bot.listeners import errors, events

    errors.register(gate)
    events.register(gate)
