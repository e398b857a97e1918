"""recurrent cash payments: store networks, lookups, store transactions, orders and charges

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("account_id", sa.String(40), nullable=True, unique=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "cash_lookups",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("network_id", sa.String(40), nullable=False),
        sa.Column("store", sa.String(120), nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("payment_source_id", sa.String(40), nullable=False),
        sa.Column("min_amount", sa.BigInteger, nullable=False),
        sa.Column("max_amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("charge_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_cash_lookups_reference", "cash_lookups", ["reference", "network_id", "store", "seq"])
    op.create_table(
        "network_payments",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("network_id", sa.String(40), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", Json, nullable=False),
        sa.Column("charge_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("network_id", "transaction_id", name="uq_network_payments_transaction"),
    )
    op.create_table(
        "orders",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_status", sa.String(32), nullable=False),
        sa.Column("customer_info", Json, nullable=False),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_orders_tenant_seq", "orders", ["account_id", "livemode", "seq"])
    op.create_table(
        "charges",
        sa.Column("seq", Seq, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(40), nullable=False),
        sa.Column("payment_source_id", sa.String(40), nullable=False),
        sa.Column("network_id", sa.String(40), nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("auth_code", sa.BigInteger, nullable=False, unique=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("fee", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("payment_method", Json, nullable=False),
        sa.Column("payer", Json, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("paid_at", sa.BigInteger, nullable=True),
        sa.Column("reversed_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_charges_tenant_seq", "charges", ["account_id", "livemode", "seq"])
    op.create_index("ix_charges_order", "charges", ["order_id"])
    op.create_index("ix_charges_reference", "charges", ["reference", "seq"])


def downgrade() -> None:
    for table in ("charges", "orders", "network_payments", "cash_lookups", "networks"):
        op.drop_table(table)
