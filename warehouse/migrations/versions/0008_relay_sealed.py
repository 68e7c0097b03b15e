"""relay: each alarm keeps its entitled consumers' sealed identifiers

Revision ID: 0008_relay_sealed
Revises: 0007_merge
Create Date: 2026-11-24 05:10:00

The relay holds an alarm's raw identifiers in memory only. Without this column, an alarm
escalated (or acknowledged, or cleared) after a restart reached public security without
the sealed ids it is entitled to. What is kept is only what each consumer already
received: values sealed to its own key, which the hub cannot open.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_relay_sealed"
down_revision = "0007_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("relay_alarms", sa.Column("sealed", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("relay_alarms") as batch:
        batch.drop_column("sealed")
