"""admin console: consumer-key changes waiting for a second admin (two-person rule, issue 17)

Revision ID: 0012_admin_pending
Revises: 0011_viid
Create Date: 2026-12-07 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_admin_pending"
down_revision = "0011_viid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("admin_pending")
