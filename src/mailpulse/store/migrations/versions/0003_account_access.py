"""Account access: an API status, a credential generation, and unique account names.

- ``accounts.status`` (active / disabled): a disabled account's tokens and static keys are
  refused, not only its sending.
- ``accounts.credential_generation``: tokens carry the generation they were issued at;
  rotating the secret or revoking all tokens moves to the next one.
- A unique index on ``accounts.name``: operators address accounts by name, so two of one name
  made every command about either of them ambiguous. Accounts that already share a name keep
  it for the oldest one (lowest id); each later one is renamed ``<name>-2``, ``<name>-3`` … (the
  first suffix not taken by any account), and the migration logs one line per rename.

Revision ID: 0003_account_access
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0003_account_access"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME_LENGTH = 200
log = logging.getLogger("mailpulse.migrations")


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("status", sa.String(16), nullable=False, server_default="active")
    )
    op.add_column(
        "accounts",
        sa.Column("credential_generation", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    _rename_duplicates(op.get_bind())
    op.create_index("uq_accounts_name", "accounts", ["name"], unique=True)


def _rename_duplicates(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT id, name FROM accounts ORDER BY id")).all()
    taken = {str(name) for _id, name in rows}
    seen: set[str] = set()
    for account_id, raw_name in rows:
        name = str(raw_name)
        if name not in seen:
            seen.add(name)
            continue
        n = 2
        while True:
            suffix = f"-{n}"
            candidate = name[: NAME_LENGTH - len(suffix)] + suffix
            if candidate not in taken:
                break
            n += 1
        taken.add(candidate)
        seen.add(candidate)
        conn.execute(
            sa.text("UPDATE accounts SET name = :name WHERE id = :id"),
            {"name": candidate, "id": account_id},
        )
        log.warning(
            "account %s renamed from %r to %r: account names are now unique",
            account_id,
            name,
            candidate,
        )


def downgrade() -> None:
    # Renamed accounts keep their new names: nothing records which were renamed.
    op.drop_index("uq_accounts_name", table_name="accounts")
    op.drop_column("accounts", "credential_generation")
    op.drop_column("accounts", "status")
