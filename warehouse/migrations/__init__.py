"""Versioned migrations of the control database (Alembic)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic configuration for this package's scripts and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "heads") -> None:
    """Bring the control database up to `revision` (idempotent)."""
    command.upgrade(alembic_config(url), revision)


def is_current(url: str) -> bool:
    """Whether the control database exists and is at the latest revision, without creating it
    (a command on an uninitialised hub must leave no empty database file behind)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return False
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()
    return current == set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
