"""This process's own lease, and closing the answers of processes whose lease lapsed.

- Each `serve` and `chat` process holds a lease of its own (bot/store/leases.py: process leases), renewed every
  sixth of PROCESS_LEASE_SECONDS (5 s of the default 30); the records it admits carry its holder (the gate's
  ``process_id``), set only once the lease is held.
- Every third of PROCESS_LEASE_SECONDS (10 s), every live process — not only the scheduler leader — closes with one
  conditional UPDATE the records in flight of the processes whose lease lapsed (bot/services/conversation/records.py:
  ``close_orphaned``), charged their reservation, a line in each thread. After a `kill -9` mid-answer the thread
  gets its line within PROCESS_LEASE_SECONDS plus one check, while the age rule (ANSWER_TIMEOUT_SECONDS +
  SWEEP_MARGIN_SECONDS) stays as the backstop.
- A process judges others only once it has held its own lease unbroken for one lease period: after an outage of
  the database itself every lease lapsed, and every process gets that long, once it is back, to renew before any
  is judged dead (their answers ending meanwhile keep their real numbers and get no false line).
- On SQLite (one host) start-up closes at once the records of every process of this host whose pid no longer runs,
  without waiting for its lease. A process that still runs on the same
  file (a `chat` beside a `serve`) keeps its answers: only its lease lapsing would close them. (Not on PostgreSQL:
  processes on several hosts, or in containers sharing a host name, cannot be told dead by a pid.)
- A clean stop deletes the lease once the record writer has written what it held; a lapsed lease is deleted with its
  records closed, and a process that comes back after losing the database renews it anew.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable
from datetime import datetime, timedelta

from bot.services.conversation.gate import Gate
from bot.services.conversation.records import Swept, close_orphaned, close_records_of, in_flight_processes
from bot.services.ports import SlackPort
from bot.store.clock import Clock
from bot.store.db import Database
from bot.store.leases import drop_lapsed_process_leases, drop_process_lease, renew_process_lease

log = logging.getLogger(__name__)

PROCESS_LEASE_SECONDS = 30.0  # the default of PROCESS_LEASE_SECONDS
RENEWALS_PER_LEASE = 6  # renewed every 5 s of a 30 s lease: five renewals may fail before it lapses
CHECKS_PER_LEASE = 3  # the lapsed processes are looked for every 10 s of a 30 s lease


def process_name() -> str:
    """Who holds a lease, as shown by `reminders`: host, pid and a random tag (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def gone_from_this_host(holder: str) -> bool:
    """True when ``holder`` (a process_name) ran on this host and its pid runs no longer. A pid reused since reads as
    running: its records then wait for the lease to lapse."""
    host, _, rest = holder.partition(":")
    pid, _, _tag = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: a process of another user runs with that pid
        return False
    return False


class ProcessLease:
    """This process's lease and the check for lapsed ones, two background tasks (started by `serve` and `chat`)."""

    def __init__(self, *, db: Database, clock: Clock, slack: SlackPort, gate: Gate,
                 lease_seconds: float = PROCESS_LEASE_SECONDS, renew_seconds: float | None = None,
                 check_seconds: float | None = None, holder: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.slack = slack
        self.gate = gate
        self.holder = holder or process_name()
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds if renew_seconds is not None else lease_seconds / RENEWALS_PER_LEASE
        self.check_seconds = check_seconds if check_seconds is not None else lease_seconds / CHECKS_PER_LEASE
        self.held_until: datetime | None = None
        self.held_since: datetime | None = None  # the start of the lease held unbroken until now (None: not held)
        self._tasks: list[asyncio.Task[None]] = []  # strong references until stop()

    @property
    def on_sqlite(self) -> bool:
        return self.db.on_sqlite

    async def start(self) -> None:
        """Take the lease (a database fault here stops the start), on SQLite close what this host's dead processes
        left, then keep renewing and checking in the background."""
        await self.renew(raise_faults=True)
        self.gate.process_id = self.holder
        if self.on_sqlite:
            await self._quietly(self.close_gone_from_this_host())
        self._tasks = [asyncio.create_task(self._renewing(), name="process-lease"),
                       asyncio.create_task(self._checking(), name="lapsed-process-check")]

    async def renew(self, *, raise_faults: bool = False) -> bool:
        now = self.clock()
        try:
            async with self.db.sessions.begin() as session:
                await renew_process_lease(session, self.holder, now, self.lease_seconds)
        except Exception as exc:
            if raise_faults:
                raise
            self.held_since = None
            lapsed = self.held_until is not None and self.clock() >= self.held_until
            log.warning("could not renew this process's lease (%s)%s", type(exc).__name__,
                        ": it lapsed, other processes may close its answers as interrupted" if lapsed else "")
            return False
        if self.held_since is None or self.held_until is None or now >= self.held_until:  # taken anew
            self.held_since = now
        self.held_until = now + timedelta(seconds=self.lease_seconds)
        return True

    @property
    def may_judge(self) -> bool:
        """Held unbroken for one lease period: a live process renewing as often as this one would have renewed."""
        return self.held_since is not None and (self.clock() - self.held_since).total_seconds() >= self.lease_seconds

    async def close_lapsed(self) -> list[Swept]:
        """Close the records in flight of every other process whose lease lapsed, and forget those leases (once this
        process may judge: see the module's doc)."""
        if not self.may_judge:
            return []
        now = self.clock()
        swept = await close_orphaned(self.db.sessions, self.slack, holder=self.holder, now=now)
        async with self.db.sessions.begin() as session:
            await drop_lapsed_process_leases(session, now)
        return swept

    async def close_gone_from_this_host(self) -> list[Swept]:
        """SQLite's start-up rule: the records of this host's processes whose pid no longer runs, closed at once."""
        gone = [holder for holder in await in_flight_processes(self.db.sessions)
                if holder != self.holder and gone_from_this_host(holder)]
        return await close_records_of(self.db.sessions, self.slack, gone)

    async def _renewing(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            await self.renew()

    async def _checking(self) -> None:  # a task of its own: posting lines to a slow Slack never delays a renewal
        while True:
            await asyncio.sleep(self.check_seconds)
            await self._quietly(self.close_lapsed())

    @staticmethod
    async def _quietly(work: Awaitable[object]) -> None:
        try:
            await work
        except Exception as exc:
            log.warning("closing the answers of processes that stopped failed (%s); tried again in seconds",
                        type(exc).__name__)

    async def stop(self) -> None:
        """Stop renewing and drop the lease (call once this process's records are written)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.gate.process_id = None
        try:
            async with self.db.sessions.begin() as session:
                await drop_process_lease(session, self.holder)
        except Exception as exc:  # it lapses by itself
            log.warning("could not drop this process's lease: %s", type(exc).__name__)
