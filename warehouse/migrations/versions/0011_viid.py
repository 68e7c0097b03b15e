"""viid: the GA/T 1400 cascade's subscriptions, outbox and queued passes

Revision ID: 0011_viid
Revises: 0010_ngsi_ld_push
Create Date: 2026-12-07 20:30:00

The hub as a lower VIID platform (peers/viid/): subscriptions the upper platform creates on
it, one outbox row per notification (its NotificationID and body fixed when queued, deleted
when acknowledged), and the vendor records already queued (a keyed hash, never the record).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_viid"
down_revision = "0010_ngsi_ld_push"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "viid_subscriptions",
        sa.Column("subscribe_id", sa.String(length=33), nullable=False),
        sa.Column("upper_id", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=100), nullable=False),
        sa.Column("resource_class", sa.Integer(), nullable=False),
        sa.Column("resource_uri", sa.String(length=256), nullable=False),
        sa.Column("receive_addr", sa.String(length=256), nullable=False),
        _ts("begin_time"),
        _ts("end_time"),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("subscribe_id"),
    )
    op.create_table(
        "viid_outbox",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscribe_id", sa.String(length=33), nullable=False),
        sa.Column("notification_id", sa.String(length=33), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("objects", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("refused", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("notification_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_viid_outbox_subscription_seq", "viid_outbox", ["subscribe_id", "seq"])
    op.create_table(
        "viid_passes_seen",
        sa.Column("record_key", sa.String(length=64), nullable=False),
        _ts("seen_at"),
        sa.PrimaryKeyConstraint("record_key"),
    )
    op.create_index("ix_viid_passes_seen_seen_at", "viid_passes_seen", ["seen_at"])


def downgrade() -> None:
    op.drop_table("viid_passes_seen")
    op.drop_index("ix_viid_outbox_subscription_seq", table_name="viid_outbox")
    op.drop_table("viid_outbox")
    op.drop_table("viid_subscriptions")
