"""relay: the household of an in-home alarm, as the hub's token, for consent

Revision ID: 0015_relay_household
Revises: 0014_dead_letter_resend
Create Date: 2026-12-07 23:40:00

Consent and legal basis on every path (issue 16, item 3): an in-home alarm goes to a consumer
on consent only if its household opted in. The relay keeps the household's staging token (the
keyed pseudonym the consent store holds, never the raw id) with the alarm, so events after a
restart are judged alike, and with each lifecycle event, so `safety.alarms` can check it too.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_relay_household"
down_revision = "0014_dead_letter_resend"
branch_labels = None
depends_on = None

TABLES = ("relay_alarms", "relay_lifecycle")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("household", sa.String(length=100), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("household")
