"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; this module describes it.

Every tenant-owned table carries ``account_id`` and ``livemode`` and every query filters on both.
``seq`` is an internal, monotonically increasing key: lists page by it, so pages stay stable
while new objects are created, and public ids stay random.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a 64-bit identity.
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_sandbox", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    # The first characters only, so an operator can tell keys apart without holding them.
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Index("ix_api_keys_account", "account_id", "livemode"),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("phone", sa.String(40), nullable=True),
    sa.Column("corporate", sa.Boolean, nullable=False),
    sa.Column("custom_reference", sa.String(250), nullable=False),
    sa.Column("date_of_birth", sa.String(40), nullable=True),
    sa.Column("national_id", sa.String(40), nullable=True),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("antifraud_info", Json, nullable=True),
    sa.Column("default_payment_source_id", sa.String(40), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.Index("ix_customers_tenant_seq", "account_id", "livemode", "seq"),
)

payment_sources = sa.Table(
    "payment_sources",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("customer_id", sa.String(40), sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    # Cash references (20 digits) and CLABEs (18 digits) share one namespace: unique across every
    # account and mode, and never reissued, even after deletion.
    sa.Column("reference", sa.String(32), nullable=False, unique=True),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_payment_sources_customer", "customer_id", "seq"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("type", sa.String(80), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_events_tenant_seq", "account_id", "livemode", "seq"),
)

# Named counters (e.g. the serial behind CLABE account numbers), bumped inside transactions.
sequences = sa.Table(
    "sequences",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# Server-wide keys that must outlive a process and be shared by every process on the database
# (e.g. the CLABE permutation key). Never exposed through any API.
server_secrets = sa.Table(
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(500), nullable=True),
    sa.Column("subscribed_events", Json, nullable=False),
    # being_pinged -> listening <-> intermittent_errors -> disabled (see caja.domain.webhooks)
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("synchronous", sa.Boolean, nullable=False),
    # The Standard Webhooks HMAC secret ("whsec_..."), encrypted with the server secret.
    sa.Column("signing_secret", sa.Text, nullable=False),
    # When the current run of failed deliveries began; None while deliveries succeed.
    sa.Column("failing_since", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.Index("ix_webhooks_tenant_seq", "account_id", "livemode", "seq"),
)

webhook_keys = sa.Table(
    "webhook_keys",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    # The PEM private key, encrypted with the server secret (caja.delivery.keyring).
    sa.Column("private_key", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("deactivated_at", sa.BigInteger, nullable=True),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
    sa.Index("ix_webhook_keys_tenant_seq", "account_id", "livemode", "seq"),
)

# The outbox's work queue: webhook deliveries, e-mails and, later, scheduled work, claimed by
# dispatchers (FOR UPDATE SKIP LOCKED on PostgreSQL) and retried with backoff. Times in ms.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("event_id", sa.String(40), nullable=True),
    sa.Column("webhook_id", sa.String(40), nullable=True),
    sa.Column("payload", Json, nullable=False),
    # pending -> running -> succeeded | failed (gave up) | cancelled; running jobs hold a lease.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_at", sa.BigInteger, nullable=False),
    sa.Column("lease_until", sa.BigInteger, nullable=True),
    sa.Column("worker", sa.String(80), nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("last_attempted_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Index("ix_jobs_due", "status", "run_at"),
    # Partial: e-mail and approval jobs name no event or webhook, and indexing their NULLs cost a
    # paid payment ~2.4 more pages written per commit (each read asks for one id, never NULL).
    sa.Index(
        "ix_jobs_event",
        "event_id",
        sqlite_where=sa.text("event_id IS NOT NULL"),
        postgresql_where=sa.text("event_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_jobs_webhook",
        "webhook_id",
        "seq",
        sqlite_where=sa.text("webhook_id IS NOT NULL"),
        postgresql_where=sa.text("webhook_id IS NOT NULL"),
    ),
)

# One row per attempt of a job: what was sent and what came back.
job_attempts = sa.Table(
    "job_attempts",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(40), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("url", sa.String(2048), nullable=True),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("request_headers", Json, nullable=True),
    sa.Column("request_body", sa.Text, nullable=True),
    sa.Column("response_headers", Json, nullable=True),
    # The first few KB only.
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Index("ix_job_attempts_job", "job_id", "seq"),
)

# Messages received by the sandbox's built-in mail catcher. A message Caja's mailer sent names
# its job (``X-Caja-Job``), and through it the account and mode it belongs to; a message from
# anywhere else has none (NULL) and is shown to the sandbox account.
caught_emails = sa.Table(
    "caught_emails",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("received_at", sa.BigInteger, nullable=False),
    sa.Column("mail_from", sa.String(320), nullable=False),
    sa.Column("recipients", Json, nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("account_id", sa.String(40), nullable=True),
    sa.Column("livemode", sa.Boolean, nullable=True),
    sa.Column("job_id", sa.String(40), nullable=True),
    sa.Index("ix_caught_emails_owner_seq", "account_id", "livemode", "seq"),
    # The message an e-mail job became (``GET /_caja/email_jobs/{id}``).
    sa.Index("ix_caught_emails_job", "job_id", "seq"),
)

# Store networks (cash aggregators) that call the network API; their HMAC secret is sealed with
# the server secret, like webhook signing secrets.
networks = sa.Table(
    "networks",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    # A live network pays live references only; a test network (the cashier simulator,
    # POST /payment_test) test references only.
    sa.Column("livemode", sa.Boolean, nullable=False),
    # Set for an account's own sandbox network (the cashier simulator, POST /payment_test): it
    # sees that account's test references only. NULL for real networks, which see every account.
    sa.Column("account_id", sa.String(40), nullable=True, unique=True),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    # After ``caja networks rotate``: the secret before it, sealed, accepted until the expiry so
    # that the network can deploy the new one without refused calls.
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_expires_at", sa.BigInteger, nullable=True),
)

# A store's successful lookup of a reference: the range the merchant approved, which the payment
# that follows must respect. ``charge_id`` is set by the one payment that used it.
cash_lookups = sa.Table(
    "cash_lookups",
    metadata,
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
    sa.Index("ix_cash_lookups_reference", "reference", "network_id", "store", "seq"),
)

# One row per store transaction (network id + the store's own transaction id): what the store
# was told, so a retry gets exactly the same answer and never a second charge.
network_payments = sa.Table(
    "network_payments",
    metadata,
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

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("payment_status", sa.String(32), nullable=False),
    # name, email, phone, corporate, custom_reference of the payer when the order was made
    sa.Column("customer_info", Json, nullable=False),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_orders_tenant_seq", "account_id", "livemode", "seq"),
)

charges = sa.Table(
    "charges",
    metadata,
    sa.Column("seq", Seq, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(40), nullable=False, unique=True),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("order_id", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("payment_source_id", sa.String(40), nullable=False),
    sa.Column("network_id", sa.String(40), nullable=False),
    sa.Column("reference", sa.String(32), nullable=False),
    # Eight digits the store prints and quotes to reverse the payment.
    sa.Column("auth_code", sa.BigInteger, nullable=False, unique=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("fee", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    # The cash_payment details: store_name, store, cashier_id, expires_at
    sa.Column("payment_method", Json, nullable=False),
    sa.Column("payer", Json, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("paid_at", sa.BigInteger, nullable=True),
    sa.Column("reversed_at", sa.BigInteger, nullable=True),
    sa.Index("ix_charges_tenant_seq", "account_id", "livemode", "seq"),
    sa.Index("ix_charges_order", "order_id"),
    sa.Index("ix_charges_reference", "reference", "seq"),
)
