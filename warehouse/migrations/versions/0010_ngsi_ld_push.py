"""peers/ngsi_ld: push cursors, the sent-instances ledger, dead letters

Revision ID: 0010_ngsi_ld_push
Revises: 0009_relay_room
Create Date: 2026-12-07 20:00:00

The hub writes its feeds and alarms into consumers' NGSI-LD brokers (`neuron push`). Where each
consumer's feeds stand, which temporal instances were sent (brokers keep duplicates, Orion-LD
#1518, so the hub must not send one twice), and the entities a broker would not take.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_ngsi_ld_push"
down_revision = "0009_relay_room"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ngsi_ld_cursors",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("feed", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("consumer", "feed"),
    )
    op.create_table(
        "ngsi_ld_sent_instances",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("entity_id", sa.String(length=300), nullable=False),
        sa.Column("attribute", sa.String(length=100), nullable=False),
        sa.Column("dataset_id", sa.String(length=300), nullable=False),
        sa.Column("observed_at", sa.String(length=40), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        _at("sent_at"),
        sa.PrimaryKeyConstraint("consumer", "entity_id", "attribute", "dataset_id", "observed_at"),
    )
    op.create_table(
        "ngsi_ld_dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("feed", sa.String(length=100), nullable=True),
        sa.Column("entity_id", sa.String(length=300), nullable=False),
        sa.Column("entity_type", sa.String(length=100), nullable=False),
        sa.Column("error_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _at("failed_at"),
        _at("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ngsi_ld_dead_letters_consumer_open", "ngsi_ld_dead_letters", ["consumer", "resolved_at"])
    op.create_index("ix_ngsi_ld_dead_letters_failed_at", "ngsi_ld_dead_letters", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_ngsi_ld_dead_letters_failed_at", table_name="ngsi_ld_dead_letters")
    op.drop_index("ix_ngsi_ld_dead_letters_consumer_open", table_name="ngsi_ld_dead_letters")
    op.drop_table("ngsi_ld_dead_letters")
    op.drop_table("ngsi_ld_sent_instances")
    op.drop_table("ngsi_ld_cursors")
