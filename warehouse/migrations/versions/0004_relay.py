"""relay: alarms, their lifecycle history, the outbox, inbound message ids

Revision ID: 0004_relay
Revises: 0001
Create Date: 2026-11-24 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_relay"
down_revision = "0001"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "relay_alarms",
        sa.Column("alarm_id", sa.String(length=100), nullable=False),
        sa.Column("community_id", sa.String(length=100), nullable=False),
        sa.Column("family", sa.String(length=50), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("device_id", sa.String(length=100), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("building", sa.String(length=20), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("room_no", sa.String(length=20), nullable=True),
        _ts("detected_at"),
        _ts("raised_at"),
        _ts("acknowledged_at", True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        _ts("cleared_at", True),
        _ts("last_event_time"),
        _ts("deadline_at", True),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("alarm_id"),
    )
    op.create_index("ix_relay_alarms_device_category", "relay_alarms", ["device_id", "category"])
    op.create_index("ix_relay_alarms_raised_at", "relay_alarms", ["raised_at"])
    op.create_table(
        "relay_lifecycle",
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("alarm_id", sa.String(length=100), nullable=False),
        sa.Column("community_id", sa.String(length=100), nullable=False),
        sa.Column("family", sa.String(length=50), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("building", sa.String(length=20), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("room_no", sa.String(length=20), nullable=True),
        sa.Column("device_id", sa.String(length=100), nullable=False),
        _ts("detected_at"),
        _ts("event_time"),
        sa.Column("actor", sa.String(length=100), nullable=False),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_relay_lifecycle_alarm_id", "relay_lifecycle", ["alarm_id"])
    op.create_index("ix_relay_lifecycle_recorded_at", "relay_lifecycle", ["recorded_at"])
    op.create_table(
        "relay_outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("alarm_id", sa.String(length=100), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_relay_outbox_destination_seq", "relay_outbox", ["destination", "seq"])
    op.create_table(
        "relay_inbound",
        sa.Column("msg_key", sa.String(length=64), nullable=False),
        _ts("seen_at"),
        sa.PrimaryKeyConstraint("msg_key"),
    )
    op.create_index("ix_relay_inbound_seen_at", "relay_inbound", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_relay_inbound_seen_at", table_name="relay_inbound")
    op.drop_table("relay_inbound")
    op.drop_index("ix_relay_outbox_destination_seq", table_name="relay_outbox")
    op.drop_table("relay_outbox")
    op.drop_index("ix_relay_lifecycle_recorded_at", table_name="relay_lifecycle")
    op.drop_index("ix_relay_lifecycle_alarm_id", table_name="relay_lifecycle")
    op.drop_table("relay_lifecycle")
    op.drop_index("ix_relay_alarms_raised_at", table_name="relay_alarms")
    op.drop_index("ix_relay_alarms_device_category", table_name="relay_alarms")
    op.drop_table("relay_alarms")
