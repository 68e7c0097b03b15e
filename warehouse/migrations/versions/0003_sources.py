"""sources: the file-drop ledger (every dropped file by SHA-256)

Revision ID: 0003_sources
Revises: 0001
Create Date: 2026-11-24 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sources"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drop_files",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("stored_as", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("encoding", sa.String(length=100), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "sha256"),
    )
    op.create_index("ix_drop_files_window", "drop_files", ["source", "window_start", "window_end"])


def downgrade() -> None:
    op.drop_index("ix_drop_files_window", table_name="drop_files")
    op.drop_table("drop_files")
