"""merge the branches of issues 3–8 into one line of history

Revision ID: 0007_merge
Revises: 0002_privacy, 0003_sources, 0004_relay, 0005_quality, 0006_admin
Create Date: 2026-11-24 02:00:00

The privacy, sources, relay, quality and console tables were each added on a branch from
0001 while they were built side by side; they touch disjoint tables. From here on there is
one head again, so the next revision has a single parent.
"""

revision = "0007_merge"
down_revision = ("0002_privacy", "0003_sources", "0004_relay", "0005_quality", "0006_admin")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
