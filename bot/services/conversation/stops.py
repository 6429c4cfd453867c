"""Slack's stop button on an answer's agent session, across processes.

The ``agent_session_stopped`` event may reach any process: the one that receives it checks who pressed stop (the
person who asked, or an admin or owner) and writes it on the answer's record (``stop_requested_by``). The process
streaming that answer hears it at once when it is the same one, else from its watcher: while it has answers in
flight it reads, about once a second, which of them were asked to stop (one query for all of them), and each such
answer closes its Anthropic stream, keeps what arrived, adds a line and ends as ``stopped``, charged what was
generated (the rest of the reservation is released when its record is settled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import or_, select, update

from bot.config import Settings
from bot.domain.decisions import Outcome
from bot.domain.roles import PRIVILEGED_ROLES
from bot.services.base import Service
from bot.services.conversation.access import effective_role
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.models import RequestRecord

log = logging.getLogger(__name__)

STOP_POLL_SECONDS = 1.0  # how often a process with answers in flight reads the stops other processes wrote
DM_SURFACES = ("dm", "assistant")  # a DM's record may name the channel it asked about, not the DM itself


class StopOutcome(StrEnum):
    STOPPING = "stopping"  # written on the record: the process answering stops within about a second
    NOT_ALLOWED = "not_allowed"  # someone else's answer, and not an admin
    NOTHING = "nothing"  # no answer in flight in that thread (it had ended)


@dataclass
class StopSignal:
    """What an answer in flight waits on beside Claude's stream."""

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    by: str | None = None

    def stop(self, by: str) -> None:
        if self.by is None:
            self.by = by
        self.requested.set()


class AnswerStops(Service):
    """The stops of this process's answers in flight, and the stop requests that arrive here."""

    def __init__(self, *, db: Database, settings: Settings, clock: Clock, slack: SlackPort,
                 poll_seconds: float = STOP_POLL_SECONDS) -> None:
        super().__init__(db=db, settings=settings, clock=clock, slack=slack)
        self.poll_seconds = poll_seconds
        self._watched: dict[int, StopSignal] = {}
        self._watcher: asyncio.Task[None] | None = None

    def watch(self, record_id: int) -> StopSignal:
        """The signal of an answer now in flight in this process (forget it when the answer ends)."""
        signal = self._watched.setdefault(record_id, StopSignal())
        if self._watcher is None or self._watcher.done() or self._watcher.cancelling():
            self._watcher = asyncio.create_task(self._watch_database(), name="answer-stops")
        return signal

    def forget(self, record_id: int) -> None:
        self._watched.pop(record_id, None)
        if not self._watched and self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()  # nothing left to watch: no task outlives the answers

    async def request(self, *, channel_id: str, thread_ts: str, user_id: str) -> StopOutcome:
        """Someone pressed stop on the session of ``thread_ts``: write it on the answer in flight there, if they
        may stop it."""
        in_thread = (RequestRecord.thread_ts == thread_ts, RequestRecord.outcome == Outcome.ADMITTED.value,
                     RequestRecord.admitted.is_(True),
                     or_(RequestRecord.channel_id == channel_id, RequestRecord.surface.in_(DM_SURFACES)))
        async with self.sessions.begin() as session:
            rows = (await session.execute(select(RequestRecord.id, RequestRecord.slack_user_id)
                                          .where(*in_thread).order_by(RequestRecord.id.desc()))).all()
            if not rows:
                return StopOutcome.NOTHING
            mine = [record_id for record_id, asker in rows if asker == user_id]
            if mine:
                stopped = mine
            else:
                role = await effective_role(session, user_id, self.settings.default_role, self.clock())
                if role.role not in PRIVILEGED_ROLES:
                    return StopOutcome.NOT_ALLOWED
                stopped = [record_id for record_id, _ in rows]
            await session.execute(update(RequestRecord)
                                  .where(RequestRecord.id.in_(stopped), RequestRecord.stop_requested_by.is_(None))
                                  .values(stop_requested_by=user_id))
        for record_id in stopped:
            log.info("request record %s: stop requested by %s", record_id, user_id)
            signal = self._watched.get(record_id)
            if signal is not None:
                signal.stop(user_id)
        return StopOutcome.STOPPING

    async def _watch_database(self) -> None:
        """While this process has answers in flight: every ``poll_seconds``, one query for the stops written on
        any of them by another process."""
        while self._watched:
            await asyncio.sleep(self.poll_seconds)
            waiting = [record_id for record_id, signal in self._watched.items() if not signal.requested.is_set()]
            if not waiting:
                continue
            try:
                async with self.reads() as session:
                    rows = (await session.execute(
                        select(RequestRecord.id, RequestRecord.stop_requested_by)
                        .where(RequestRecord.id.in_(waiting), RequestRecord.stop_requested_by.is_not(None)))).all()
            except Exception as exc:  # the database is away: answers go on, and the next round reads again
                log.warning("could not read the answers' stop requests: %s", type(exc).__name__)
                continue
            for record_id, by in rows:
                signal = self._watched.get(record_id)
                if signal is not None and by is not None:
                    signal.stop(by)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
