"""jobs: index only the jobs that name an event or a webhook

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_EVENT = sa.text("event_id IS NOT NULL")
_WEBHOOK = sa.text("webhook_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_jobs_event", table_name="jobs")
    op.drop_index("ix_jobs_webhook", table_name="jobs")
    op.create_index("ix_jobs_event", "jobs", ["event_id"], sqlite_where=_EVENT, postgresql_where=_EVENT)
    op.create_index(
        "ix_jobs_webhook", "jobs", ["webhook_id", "seq"], sqlite_where=_WEBHOOK, postgresql_where=_WEBHOOK
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_event", table_name="jobs")
    op.drop_index("ix_jobs_webhook", table_name="jobs")
    op.create_index("ix_jobs_event", "jobs", ["event_id"])
    op.create_index("ix_jobs_webhook", "jobs", ["webhook_id", "seq"])
