"""The tables, in SQLAlchemy Core. Alembic migrations (store/migrations) create them.

The email log is ``deliveries``: one row per recipient of an accepted message, moving through
the states in ``core.status``. While a delivery is still to be attempted it also has a row in
``delivery_queue``, which delivery workers claim with a lease (``lease_until``/``lease_owner``).
Attempts, events (the outbox for webhooks and tracking) and the message bytes live beside it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite only makes INTEGER PRIMARY KEY an alias of rowid; BigInteger elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, server_default=""),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("client_secret_hash", String(200), nullable=False),
    Column("smtp_activated", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime, nullable=False),
    # API access: active / disabled (core/access.py). Disabled refuses tokens and keys alike.
    Column("status", String(16), nullable=False, server_default="active"),
    # Tokens carry the generation they were issued at; rotating the secret or revoking the
    # tokens moves to the next one, and older tokens stop working.
    Column("credential_generation", Integer, nullable=False, server_default=text("0")),
    Index("uq_accounts_name", "name", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_hint", String(16), nullable=False, server_default=""),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)

senders = Table(
    "senders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False, server_default=""),
    Column("status", String(20), nullable=False, server_default="active"),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("account_id", "email", name="uq_senders_account_email"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("source", String(10), nullable=False, server_default="api"),
    Column("envelope_from", String(320), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("subject", Text, nullable=False, server_default=""),
    Column("message_id_header", String(400), nullable=False, server_default=""),
    Column("total_size", Integer, nullable=False),
    Column("sender_ip", String(64), nullable=False, server_default=""),
    Column("template_id", String(64), nullable=True),
    Column("raw", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("public_id", String(20), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("recipient_domain", String(255), nullable=False),
    Column("kind", String(4), nullable=False, server_default="to"),
    Column("sender", String(320), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("send_date", DateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # what the receiving server said last
    Column("smtp_answer_code", Integer, nullable=True),
    Column("smtp_answer_subcode", String(16), nullable=False, server_default=""),
    Column("smtp_answer_data", Text, nullable=False, server_default=""),
    Column("used_ip", String(64), nullable=False, server_default=""),
    Column("bounce_category", String(32), nullable=True),
    # tracking (filled by the tracking issue)
    Column("tracking_token", String(64), nullable=True),
    Column("opens", Integer, nullable=False, server_default=text("0")),
    Column("clicks", Integer, nullable=False, server_default=text("0")),
    Index("ix_deliveries_account_created", "account_id", "created_at", "id"),
    Index("ix_deliveries_account_recipient", "account_id", "recipient", "created_at"),
    Index("ix_deliveries_account_sender", "account_id", "sender", "created_at"),
    Index("ix_deliveries_message", "message_id"),
)

# The queue proper: one narrow row per delivery still to be attempted (queued or deferred),
# removed when it is delivered or bounced. Claims update only these rows and their two
# indexes, not the wide, seven-times-indexed log rows.
delivery_queue = Table(
    "delivery_queue",
    metadata,
    Column("delivery_id", Id, ForeignKey("deliveries.id"), primary_key=True, autoincrement=False),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("lease_until", DateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Index("ix_delivery_queue_due", "next_attempt_at"),
)

# How many log records each account has, kept by triggers on ``deliveries`` in the inserting
# transaction (migration 0004): GET /smtp/emails/total sums an account's rows instead of
# counting ten million index entries. PostgreSQL spreads an account over up to 16 ``stripe``
# rows, so concurrent transactions rarely wait on one another's row lock; SQLite uses stripe 0.
log_counts = Table(
    "log_counts",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("stripe", SmallInteger, nullable=False, autoincrement=False),
    Column("total", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "stripe"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=False),
    Column("attempted_at", DateTime, nullable=False),
    Column("host", String(255), nullable=False, server_default=""),
    Column("used_ip", String(64), nullable=False, server_default=""),
    Column("code", Integer, nullable=True),
    Column("subcode", String(16), nullable=False, server_default=""),
    Column("text", Text, nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),
    Index("ix_attempts_delivery", "delivery_id", "attempted_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=True),
    Column("type", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("published_at", DateTime, nullable=True),
    Index("ix_events_account_created", "account_id", "created_at"),
    Index(
        "ix_events_unpublished",
        "id",
        sqlite_where=text("published_at IS NULL"),
        postgresql_where=text("published_at IS NULL"),
    ),
)

# The account's suppression list: one row per address the account must not mail, with why.
# An address is on the list while any of its flags is set: ``bounced`` (a recipient-level
# permanent failure, core/suppression.py decides which), or one of SendPulse's unsubscribe
# flags (by link, by the account through the API, by a spam complaint). GET /smtp/unsubscribe
# lists the rows with an unsubscribe flag; DELETE /smtp/unsubscribe removes the row.
# ``email`` is stored lower-cased; every lookup starts with ``account_id``.
suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("unsubscribe_by_link", SmallInteger, nullable=False, server_default=text("0")),
    Column("unsubscribe_by_user", SmallInteger, nullable=False, server_default=text("0")),
    Column("spam_complaint", SmallInteger, nullable=False, server_default=text("0")),
    Column("bounced", SmallInteger, nullable=False, server_default=text("0")),
    # the bounce category (delivery/classify.py) that put it there, when ``bounced``
    Column("bounce_category", String(32), nullable=True),
    Column("comment", Text, nullable=False, server_default=""),
    # when the address was (last) put on the list: the ``date`` of GET /smtp/unsubscribe
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("account_id", "email", name="uq_suppressions_account_email"),
    Index("ix_suppressions_account_created", "account_id", "created_at", "id"),
)

# Every bounce, synchronous (a 5xx reply, an expiry) or asynchronous (a DSN at the bounce
# receiver): the list of GET /smtp/bounces/day. A copy of what the list shows, so listing a
# day reads one index range and no log rows.
bounces = Table(
    "bounces",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=True),
    Column("email_to", String(320), nullable=False),
    Column("sender", String(320), nullable=False, server_default=""),
    Column("subject", Text, nullable=False, server_default=""),
    Column("send_date", DateTime, nullable=True),
    Column("smtp_answer_code", Integer, nullable=True),
    Column("smtp_answer_subcode", String(16), nullable=False, server_default=""),
    Column("smtp_answer_data", Text, nullable=False, server_default=""),
    Column("category", String(32), nullable=False, server_default="other"),
    # sync: the receiving server's reply or an expiry; dsn: a report at the bounce receiver
    Column("source", String(8), nullable=False, server_default="sync"),
    # did this bounce put the address on the suppression list
    Column("suppressed", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime, nullable=False),
    Index("ix_bounces_account_created", "account_id", "created_at", "id"),
)

# Resubscribe confirmations sent (POST /smtp/resubscribe): at most 5 per account per 24 hours,
# counted over this table; ``confirmed_at`` is set when the signed link is followed.
resubscriptions = Table(
    "resubscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("lang", String(8), nullable=False, server_default="en"),
    Column("delivery_id", Id, ForeignKey("deliveries.id"), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("confirmed_at", DateTime, nullable=True),
    Index("ix_resubscriptions_account_created", "account_id", "created_at"),
)

# An account's stored templates (POST /template; a send's ``template.id`` names one). ``id`` is
# SendPulse's ``real_id`` (and, as a string, its ``id``); ``name`` is NULL when none was given
# (the API shows "Template <id>"); ``body`` is the HTML source (core/templates.py renders it).
# Every lookup starts with ``account_id``: one tenant never sees another's templates.
templates = Table(
    "templates",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(200), nullable=True),
    Column("lang", String(8), nullable=False, server_default="en"),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("account_id", "name", name="uq_templates_account_name"),
    Index("ix_templates_account_id", "account_id", "id"),
)
