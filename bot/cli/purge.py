"""`claude-gate purge [--now]`: the retention purge from a shell, the same service the scheduler runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.cli.base import with_database
from bot.config import Settings
from bot.domain.words import counted


def add_purge_command(sub: Any) -> None:
    purge = sub.add_parser("purge", help="retention: show what is purged when, or --now to purge at once")
    purge.add_argument("--now", action="store_true", help="purge what is older than RETENTION_DAYS now")
    purge.set_defaults(handler=cmd_purge)


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from bot.scheduler import RETENTION_JOB
    from bot.services.access.roles import SHELL_ACTOR
    from bot.services.data.retention import PurgeResult, purge_expired
    from bot.store.clock import system_clock
    from bot.store.leases import last_run

    audit = (f"audit rows after {counted(settings.audit_retention_days, 'day')}" if settings.audit_retention_days
             else "the audit log is kept (AUDIT_RETENTION_DAYS unset)")
    if not args.now:
        async def when(db: Any) -> Any:
            async with db.sessions() as session:
                return await last_run(session, RETENTION_JOB)

        last = with_database(settings, when)
        print(f"prompt text and thread references are purged after {counted(settings.retention_days, 'day')}; {audit}")
        print(f"last daily purge: {f'{last:%Y-%m-%d %H:%M} UTC' if last else 'never'}; "
              "claude-gate purge --now purges now")
        return 0

    async def progress(result: PurgeResult) -> None:
        if result.batches % 20 == 0:
            print(f"… {result.batches} batches", file=sys.stderr, flush=True)

    async def work(db: Any) -> PurgeResult:
        return await purge_expired(db.engine, system_clock, settings, actor=SHELL_ACTOR, on_batch=progress)

    result = with_database(settings, work)
    print(result.summary())
    return 0
