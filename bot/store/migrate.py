"""Run Alembic migrations from code (`claude-gate db upgrade`, `serve`, the tests)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; quiet unless something is applied at DEBUG level."""
    alembic_log = logging.getLogger("alembic")
    previous = alembic_log.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        alembic_log.setLevel(logging.WARNING)
    try:
        command.upgrade(alembic_config(database_url), revision)
    finally:
        alembic_log.setLevel(previous)
