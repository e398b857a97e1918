"""networks: a previous secret that stays valid for a grace period after a rotation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.add_column(sa.Column("previous_secret", sa.Text, nullable=True))
        batch.add_column(sa.Column("previous_secret_expires_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("networks") as batch:
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret")
