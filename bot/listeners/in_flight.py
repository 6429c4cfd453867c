"""Listener runs under way are remembered (bot.slack.listener_tasks) so that shutdown can let them finish."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime


def register(runtime: Runtime) -> None:
    # the same public runner attribute Bolt's own ``app.error`` sets its handler on
    runtime.bolt.listener_runner.listener_start_handler = runtime.listeners
