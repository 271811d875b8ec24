"""Stored templates: one row per template of an account (POST /template, a send's
``template.id``). See store/tables.py.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("lang", sa.String(8), nullable=False, server_default="en"),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("account_id", "name", name="uq_templates_account_name"),
    )
    op.create_index("ix_templates_account_id", "templates", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_templates_account_id", table_name="templates")
    op.drop_table("templates")
