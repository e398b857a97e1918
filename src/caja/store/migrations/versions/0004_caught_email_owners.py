"""caught emails: the account, mode and job each message came from

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("caught_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("livemode", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("job_id", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_caught_emails_owner_seq", ["account_id", "livemode", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("caught_emails", schema=None) as batch_op:
        batch_op.drop_index("ix_caught_emails_owner_seq")
        batch_op.drop_column("job_id")
        batch_op.drop_column("livemode")
        batch_op.drop_column("account_id")
