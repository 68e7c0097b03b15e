"""relay: the room of an in-home alarm, kept encrypted

Revision ID: 0009_relay_room
Revises: 0008_relay_sealed
Create Date: 2026-11-24 08:30:00

The relay now finds the room of an in-home device's household in the platform's register
(relay/rooms.py), for consumers whose policy entitles them to it (sealed to their key). The
control database keeps it only encrypted (`enc:{version}:{AES-256-GCM}`), which does not fit
the 20 characters the plain room number was given.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_relay_room"
down_revision = "0008_relay_sealed"
branch_labels = None
depends_on = None

TABLES = ("relay_alarms", "relay_lifecycle")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("room_no", type_=sa.String(length=120), existing_type=sa.String(length=20))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("room_no", type_=sa.String(length=20), existing_type=sa.String(length=120))
