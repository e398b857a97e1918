"""caught emails: find the message an e-mail job became

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 05:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("caught_emails", schema=None) as batch_op:
        batch_op.create_index("ix_caught_emails_job", ["job_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("caught_emails", schema=None) as batch_op:
        batch_op.drop_index("ix_caught_emails_job")
