"""privacy engine: households' consent, consumers' encryption keys

Revision ID: 0002_privacy
Revises: 0001
Create Date: 2026-11-24 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_privacy"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent",
        sa.Column("household_token", sa.String(length=64), nullable=False),
        sa.Column("function", sa.String(length=40), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("household_token", "function"),
    )
    op.create_table(
        "consumer_encryption_keys",
        sa.Column("key_id", sa.String(length=100), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["consumer"], ["consumers.name"]),
        sa.PrimaryKeyConstraint("key_id"),
    )
    with op.batch_alter_table("consumer_encryption_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consumer_encryption_keys_consumer"), ["consumer"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("consumer_encryption_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consumer_encryption_keys_consumer"))
    op.drop_table("consumer_encryption_keys")
    op.drop_table("consent")
