"""The spine: accounts, keys, senders, messages, deliveries (log + queue), attempts, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUEUED = sa.text("status IN ('queued', 'deferred')")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, server_default=""),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("client_secret_hash", sa.String(200), nullable=False),
        sa.Column("smtp_activated", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_hint", sa.String(16), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "senders",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("account_id", "email", name="uq_senders_account_email"),
    )
    op.create_table(
        "messages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("source", sa.String(10), nullable=False, server_default="api"),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("message_id_header", sa.String(400), nullable=False, server_default=""),
        sa.Column("total_size", sa.Integer, nullable=False),
        sa.Column("sender_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("template_id", sa.String(64), nullable=True),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("public_id", sa.String(20), nullable=False, unique=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("message_id", Id, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("recipient_domain", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(4), nullable=False, server_default="to"),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("send_date", sa.DateTime, nullable=True),
        sa.Column("next_attempt_at", sa.DateTime, nullable=True),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("smtp_answer_code", sa.Integer, nullable=True),
        sa.Column("smtp_answer_subcode", sa.String(16), nullable=False, server_default=""),
        sa.Column("smtp_answer_data", sa.Text, nullable=False, server_default=""),
        sa.Column("used_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("bounce_category", sa.String(32), nullable=True),
        sa.Column("tracking_token", sa.String(64), nullable=True),
        sa.Column("opens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("clicks", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_index(
        "ix_deliveries_account_created", "deliveries", ["account_id", "created_at", "id"]
    )
    op.create_index(
        "ix_deliveries_account_recipient", "deliveries", ["account_id", "recipient", "created_at"]
    )
    op.create_index(
        "ix_deliveries_account_sender", "deliveries", ["account_id", "sender", "created_at"]
    )
    op.create_index("ix_deliveries_message", "deliveries", ["message_id"])
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        sqlite_where=QUEUED,
        postgresql_where=QUEUED,
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("attempted_at", sa.DateTime, nullable=False),
        sa.Column("host", sa.String(255), nullable=False, server_default=""),
        sa.Column("used_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("code", sa.Integer, nullable=True),
        sa.Column("subcode", sa.String(16), nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("outcome", sa.String(16), nullable=False),
    )
    op.create_index("ix_attempts_delivery", "delivery_attempts", ["delivery_id", "attempted_at"])
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),
        sa.Column("published_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_events_account_created", "events", ["account_id", "created_at"])
    op.create_index(
        "ix_events_unpublished",
        "events",
        ["id"],
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    for name in (
        "events",
        "delivery_attempts",
        "deliveries",
        "messages",
        "senders",
        "api_keys",
        "accounts",
    ):
        op.drop_table(name)
