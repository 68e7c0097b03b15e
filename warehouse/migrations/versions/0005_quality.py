"""data quality: the kept Great Expectations results and quarantine counts of every batch

Revision ID: 0005_quality
Revises: 0001
Create Date: 2026-11-24 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_quality"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_batches",
        sa.Column("batch_id", sa.String(length=200), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("community_id", sa.String(length=100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("suite", sa.String(length=200), nullable=False),
        sa.Column("rows_in", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_quarantined", sa.Integer(), nullable=False),
        sa.Column("duplicates_dropped", sa.Integer(), nullable=False),
        sa.Column("gx_success", sa.Boolean(), nullable=True),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.Column("schema_drift", sa.Text(), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_index("ix_quality_batches_stream_window", "quality_batches", ["stream", "community_id", "window_end"])
    op.create_table(
        "quality_expectations",
        sa.Column("batch_id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("expectation", sa.String(length=100), nullable=False),
        sa.Column("column", sa.String(length=500), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("unexpected", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["quality_batches.batch_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_id", "position"),
    )
    op.create_table(
        "quality_reasons",
        sa.Column("batch_id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["quality_batches.batch_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("quality_reasons")
    op.drop_table("quality_expectations")
    op.drop_index("ix_quality_batches_stream_window", table_name="quality_batches")
    op.drop_table("quality_batches")
