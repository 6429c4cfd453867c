"""`claude-gate db upgrade`: apply the Alembic migrations, and say what changed."""

from __future__ import annotations

import argparse
from typing import Any

from bot.config import Settings


def add_db_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(metavar="action")
    upgrade = db_sub.add_parser("upgrade", help="apply the Alembic migrations")
    upgrade.set_defaults(handler=cmd_db_upgrade)


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.store.migrate import upgrade_database

    before, after = upgrade_database(settings.database_url)
    if before == after:
        print(f"the database is up to date (revision {', '.join(after) or 'none'})")
    else:
        print(f"the database was migrated from revision {', '.join(before) or 'none (a new database)'} to "
              f"{', '.join(after)}")
    return 0
