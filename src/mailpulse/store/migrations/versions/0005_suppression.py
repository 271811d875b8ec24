"""The suppression side: the suppression list, the bounce list, resubscribe confirmations.

``suppressions`` holds one row per (account, address) the account must not mail, with the
flags SendPulse reports (unsubscribed by link, by the account, by a spam complaint) and our own
``bounced``; ``bounces`` is the list GET /smtp/bounces/day reads, one row per bounce with a
copy of what it shows; ``resubscriptions`` counts the confirmations an account sent (5 a day).
See store/tables.py.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _flag(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.SmallInteger, nullable=False, server_default=sa.text("0"))


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        _flag("unsubscribe_by_link"),
        _flag("unsubscribe_by_user"),
        _flag("spam_complaint"),
        _flag("bounced"),
        sa.Column("bounce_category", sa.String(32), nullable=True),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("account_id", "email", name="uq_suppressions_account_email"),
    )
    op.create_index(
        "ix_suppressions_account_created", "suppressions", ["account_id", "created_at", "id"]
    )
    op.create_table(
        "bounces",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=True),
        sa.Column("email_to", sa.String(320), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False, server_default=""),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("send_date", sa.DateTime, nullable=True),
        sa.Column("smtp_answer_code", sa.Integer, nullable=True),
        sa.Column("smtp_answer_subcode", sa.String(16), nullable=False, server_default=""),
        sa.Column("smtp_answer_data", sa.Text, nullable=False, server_default=""),
        sa.Column("category", sa.String(32), nullable=False, server_default="other"),
        sa.Column("source", sa.String(8), nullable=False, server_default="sync"),
        sa.Column("suppressed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_bounces_account_created", "bounces", ["account_id", "created_at", "id"])
    op.create_table(
        "resubscriptions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False, server_default="en"),
        sa.Column("delivery_id", Id, sa.ForeignKey("deliveries.id"), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("confirmed_at", sa.DateTime, nullable=True),
    )
    op.create_index(
        "ix_resubscriptions_account_created", "resubscriptions", ["account_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("resubscriptions")
    op.drop_table("bounces")
    op.drop_table("suppressions")
