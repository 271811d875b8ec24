"""A per-account count of the email log, kept by the database in the inserting transaction.

``GET /smtp/emails/total`` used to count the tenant's index entries on every call: 0.5–0.9 s at
ten million records. Now a trigger on ``deliveries`` adds one to ``log_counts`` in the very
transaction that inserts the row (and takes one off if a row is ever deleted), so the count is
exact at every commit, a rolled-back insert leaves it untouched, and reading it sums a few rows.

On PostgreSQL, concurrent writers (API processes, each with its own group-commit transaction)
would queue behind one another on a single counter row per account, each holding its row lock
until COMMIT. So each account has up to 16 rows (``stripe``), and a transaction adds to the one
picked by its transaction id: two transactions in flight share a row only one time in 16, and
the read sums them. SQLite has one writer at a time, so a single row (stripe 0) costs nothing
in contention.

The back-fill runs after the trigger exists, in the migration's transaction: on PostgreSQL
CREATE TRIGGER locks ``deliveries`` against inserts until the migration commits, and on SQLite
the migration holds the write lock, so no row is counted twice or missed.

Revision ID: 0004
Revises: 0003_account_access
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003_account_access"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STRIPES = 16

_UPSERT = (
    "INSERT INTO log_counts (account_id, stripe, total) VALUES ({account}, {stripe}, {delta}) "
    "ON CONFLICT (account_id, stripe) DO UPDATE SET total = log_counts.total + {delta}"
)


def upgrade() -> None:
    op.create_table(
        "log_counts",
        sa.Column("account_id", Id, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("stripe", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("total", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        stripe = f"(txid_current() % {STRIPES})::smallint"
        added = _UPSERT.format(account="NEW.account_id", stripe=stripe, delta="1")
        removed = _UPSERT.format(account="OLD.account_id", stripe=stripe, delta="-1")
        op.execute(
            "CREATE FUNCTION deliveries_count() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF TG_OP = 'INSERT' THEN {added}; ELSE {removed}; END IF; "
            "RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER deliveries_count AFTER INSERT OR DELETE ON deliveries "
            "FOR EACH ROW EXECUTE FUNCTION deliveries_count()"
        )
    else:
        added = _UPSERT.format(account="NEW.account_id", stripe="0", delta="1")
        removed = _UPSERT.format(account="OLD.account_id", stripe="0", delta="-1")
        op.execute(
            "CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries FOR EACH ROW "
            f"BEGIN {added}; END"
        )
        op.execute(
            "CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries FOR EACH ROW "
            f"BEGIN {removed}; END"
        )
    op.execute(
        "INSERT INTO log_counts (account_id, stripe, total) "
        "SELECT account_id, 0, count(*) FROM deliveries GROUP BY account_id"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER deliveries_count ON deliveries")
        op.execute("DROP FUNCTION deliveries_count()")
    else:
        op.execute("DROP TRIGGER deliveries_count_insert")
        op.execute("DROP TRIGGER deliveries_count_delete")
    op.drop_table("log_counts")
