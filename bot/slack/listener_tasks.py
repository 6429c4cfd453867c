"""Listener runs under way.

Bolt starts each listener as a task it keeps no reference to (``asyncio.ensure_future`` in its runner). We keep one:
a task nobody references can be collected mid-answer (asyncio holds tasks weakly), and shutdown must let answers and
admin commands finish before the database and the HTTP clients close. Without this, a listener still running at close
kept its database connection (and, on PostgreSQL, its transaction's locks) after the engine was disposed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)


class InFlightListeners(AsyncListenerStartHandler):
    """Bolt's listener start hook: runs inside the listener's task, which it remembers until the task ends."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self.tasks:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self, grace: float) -> int:
        """Let running listeners finish for up to ``grace`` seconds, then cancel the rest (a cancelled answer still
        finishes its record). Returns how many were cancelled."""
        running = {task for task in self.tasks if task is not asyncio.current_task()}
        if not running:
            return 0
        log.info("waiting up to %.0f s for %d running listener(s) to finish", grace, len(running))
        _, late = await asyncio.wait(running, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            log.warning("cancelled %d listener(s) still running after %.0f s", len(late), grace)
        return len(late)
