"""partitions: the treatment of the feed's fields they were published under

Revision ID: 0013_partition_treatment
Revises: 0012_admin_pending
Create Date: 2026-12-07 21:35:00

Policies are live (issue 16, item 6): a partition published under a treatment of a field
that is no longer the one in force (the same column, a stricter rule) is withheld until it
is republished. The policy fingerprint covers the whole policy; this is the fingerprint of
the consumer's grant of this one feed, so a change to another feed withholds nothing here.
Null for partitions published before: they are judged by their columns alone, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_partition_treatment"
down_revision = "0012_admin_pending"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.add_column(sa.Column("treatment_fingerprint", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.drop_column("treatment_fingerprint")
