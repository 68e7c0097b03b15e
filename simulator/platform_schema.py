"""The WeChat platform's backend schema, as the platform vendor built it.

A multi-tenant SaaS schema: every table is keyed by (community_id, its own id) and
carries `updated_at` (naive local time, whole seconds, as a MySQL DATETIME column
stores it), indexed for incremental reads. The same schema is created on SQLite,
MariaDB and PostgreSQL. `apply_drift` changes it the way the vendor's releases do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine

metadata = MetaData()


def _table(name: str, key: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        Column("community_id", String(64), nullable=False),
        Column(key, String(40), nullable=False),
        *columns,
        Column("updated_at", DateTime(), nullable=False),
        PrimaryKeyConstraint("community_id", key),
        Index(f"ix_{name}_updated_at", "updated_at"),
    )


households = _table(
    "households",
    "household_id",
    Column("building", Integer, nullable=False),
    Column("unit", Integer, nullable=False),
    Column("floor", Integer, nullable=False),
    Column("address", String(64), nullable=False),
    Column("area_m2", Double, nullable=False),
    Column("arrears_fen", BigInteger, nullable=False),
    Column("created_at", DateTime(), nullable=False),
)
residents = _table(
    "residents",
    "resident_id",
    Column("household_id", String(40), nullable=False),
    Column("name", String(32), nullable=False),
    Column("id_number", String(32), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("openid", String(64), nullable=False),
    Column("gender", String(4), nullable=False),
    Column("age", Integer, nullable=False),
    Column("is_owner", Boolean, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verified_at", DateTime(), nullable=True),
    Column("created_at", DateTime(), nullable=False),
)
notices = _table(
    "notices",
    "notice_id",
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("category", String(32), nullable=False),
    Column("publisher", String(32), nullable=False),
    Column("published_at", DateTime(), nullable=False),
)
fee_payments = _table(
    "fee_payments",
    "payment_id",
    Column("household_id", String(40), nullable=False),
    Column("fee_type", String(16), nullable=False),
    Column("period", String(7), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("trade_no", String(40), nullable=True),
    Column("paid_at", DateTime(), nullable=False),
)
votes = _table(
    "votes",
    "ballot_id",
    Column("motion_id", String(32), nullable=False),
    Column("motion_title", String(200), nullable=False),
    Column("resident_id", String(40), nullable=False),
    Column("household_id", String(40), nullable=False),
    Column("choice", String(16), nullable=False),
    Column("area_m2", Double, nullable=False),
    Column("cast_at", DateTime(), nullable=False),
    # The voter's receipt is shown once on the vote page and never stored: only its commitment
    # (SHA-256, docs/votes.md), from which the hub proves the ballot counted.
    Column("receipt_commitment", String(64), nullable=False),
)
volunteers = _table(
    "volunteers",
    "signup_id",
    Column("resident_id", String(40), nullable=False),
    Column("activity", String(32), nullable=False),
    Column("activity_start", DateTime(), nullable=False),
    Column("hours", Double, nullable=True),
    Column("status", String(16), nullable=False),
)
repairs = _table(
    "repairs",
    "request_id",
    Column("household_id", String(40), nullable=False),
    Column("category", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("submitted_at", DateTime(), nullable=False),
    Column("resolved_at", DateTime(), nullable=True),
    Column("rating", Integer, nullable=True),
)
circle_posts = _table(
    "circle_posts",
    "post_id",
    Column("resident_id", String(40), nullable=False),
    Column("circle", String(32), nullable=False),
    Column("content", Text, nullable=False),
    Column("likes", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("posted_at", DateTime(), nullable=False),
)
consent = _table(
    "consent",
    "consent_id",
    Column("household_id", String(40), nullable=False),
    Column("function", String(32), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("changed_at", DateTime(), nullable=False),
)

TABLES: dict[str, Table] = {t.name: t for t in metadata.sorted_tables}
KEYS: dict[str, str] = {
    t.name: next(c.name for c in t.primary_key.columns if c.name != "community_id") for t in TABLES.values()
}

# The vendor's releases that changed the schema under us (DriftKind -> table).
DRIFTS: dict[str, str] = {
    "added_column": "residents",  # a WeChat unionid column appears
    "renamed_column": "repairs",  # description becomes content
    "changed_type": "volunteers",  # hours becomes free text such as "2.5小时"
}


def create_schema(engine: Engine) -> None:
    """Create the platform's tables (idempotent)."""
    metadata.create_all(engine, checkfirst=True)


def apply_drift(engine: Engine, kind: str) -> None:
    """Change the live schema as one of the vendor's releases did (see DRIFTS)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    table = DRIFTS[kind]
    with engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        # Batch mode: SQLite rebuilds the table where it cannot ALTER; others ALTER in place.
        with ops.batch_alter_table(table) as batch:
            if kind == "added_column":
                batch.add_column(Column("unionid", String(64), nullable=True))
            elif kind == "renamed_column":
                batch.alter_column(
                    "description", new_column_name="content", existing_type=Text(), existing_nullable=False
                )
            else:
                batch.alter_column("hours", type_=String(16), existing_type=Double(), existing_nullable=True)
