"""Run Alembic migrations from code (`claude-gate db upgrade`, `serve`, the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import DBAPIError

from bot.store.db import sync_url

if TYPE_CHECKING:
    from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = PROJECT_ROOT / "migrations" / "versions"


def schema_head() -> str:
    """The newest revision, read from the file names (each revision is named after its ID: ``0011_….py``);
    tests/processes/test_storage.py checks that it is Alembic's head. A database already there is not handed to Alembic:
    loading it and its scripts was a sixth of `serve`'s start-up."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9]*_*.py"))


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def current_revisions(database_url: str) -> list[str]:
    """The revisions the database is at (none when it was never migrated, or cannot be read)."""
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:  # no such table yet; an unreachable database fails again, with Alembic's own message
        return []
    finally:
        engine.dispose()


def upgrade_database(database_url: str, revision: str = "head") -> tuple[list[str], list[str]]:
    """Migrate to ``revision``: the revisions the database was at before, and after."""
    before = current_revisions(database_url)
    if revision == "head" and before == [schema_head()]:
        return before, before
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)
    return before, current_revisions(database_url)
