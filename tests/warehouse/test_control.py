"""The control database: migrations on SQLite and PostgreSQL, and models that match them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from warehouse.control import engine_for, session_scope
from warehouse.migrations import alembic_config, migrate
from warehouse.models import Base, Cursor


def test_migrations_create_the_schema_the_models_describe(control_url: str) -> None:
    migrate(control_url)
    migrate(control_url)  # idempotent: a second run changes nothing
    with engine_for(control_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_timestamps_come_back_timezone_aware_in_utc(control_url: str) -> None:
    migrate(control_url)
    shanghai = timezone(timedelta(hours=8))
    written = datetime(2026, 11, 20, 8, 0, tzinfo=shanghai)
    with session_scope(control_url) as session:
        session.add(Cursor(stream="s", community_id="c", value="v", updated_at=written))
    with session_scope(control_url) as session:
        cursor = session.get(Cursor, ("s", "c"))
        assert cursor is not None
        assert cursor.updated_at == written
        assert cursor.updated_at.tzinfo is not None
        assert cursor.updated_at.utcoffset() == UTC.utcoffset(None)


def test_the_migrations_have_one_head() -> None:
    """Branches built side by side are merged, so the next revision has a single parent."""
    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1
