"""relay: sealed identifiers kept, per alarm and per value

Revision ID: 0008_relay_sealed
Revises: 0007_merge
Create Date: 2026-11-24 05:10:00

The relay holds an alarm's raw identifiers in memory only. Without this column, an alarm
escalated (or acknowledged, or cleared) after a restart reached public security without
the sealed ids it is entitled to. What is kept is only what each consumer already
received: values sealed to its own key, which the hub cannot open.

`relay_sealed` keeps each value sealed to a consumer, under a keyed hash of (recipient key,
kind, value), so that a restarted relay does not seal every device's identifiers again (an
X25519 exchange each) in the middle of an incident.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_relay_sealed"
down_revision = "0007_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("relay_alarms", sa.Column("sealed", sa.Text(), nullable=True))
    op.create_table(
        "relay_sealed",
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("lookup"),
    )
    op.create_index("ix_relay_sealed_key_id", "relay_sealed", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_relay_sealed_key_id", table_name="relay_sealed")
    op.drop_table("relay_sealed")
    with op.batch_alter_table("relay_alarms") as batch:
        batch.drop_column("sealed")
