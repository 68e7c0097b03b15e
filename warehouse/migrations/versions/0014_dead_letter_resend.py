"""ngsi_ld_dead_letters: a re-send asked for in the console

Revision ID: 0014_dead_letter_resend
Revises: 0013_partition_treatment
Create Date: 2026-12-07 23:30:00

Issue 20: a dead letter can be sent again (`neuron push resend`, or a console button). The
console cannot reach a broker itself (it is below the pusher in the layers, and on the admin
network), so it marks the letters; `neuron push` re-sends the marked ones at its next round.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_dead_letter_resend"
down_revision = "0013_partition_treatment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ngsi_ld_dead_letters") as batch:
        batch.add_column(sa.Column("resend_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ngsi_ld_dead_letters") as batch:
        batch.drop_column("resend_requested_at")
