"""Queries for the account aggregate: accounts, their API keys and their senders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.store.tables import accounts, api_keys, senders


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    email: str
    client_id: str
    smtp_activated: bool
    created_at: datetime


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        id=int(m["id"]),
        name=str(m["name"]),
        email=str(m["email"]),
        client_id=str(m["client_id"]),
        smtp_activated=bool(m["smtp_activated"]),
        created_at=m["created_at"],
    )


_ACCOUNT_COLUMNS = [
    accounts.c.id,
    accounts.c.name,
    accounts.c.email,
    accounts.c.client_id,
    accounts.c.smtp_activated,
    accounts.c.created_at,
]


def create_account(
    conn: Connection,
    *,
    name: str,
    email: str,
    client_id: str,
    secret_hash: str,
    activated: bool,
    now: datetime,
) -> int:
    return int(
        conn.execute(
            accounts.insert()
            .returning(accounts.c.id)
            .values(
                name=name,
                email=email,
                client_id=client_id,
                client_secret_hash=secret_hash,
                smtp_activated=activated,
                created_at=now,
            )
        ).scalar_one()
    )


def find_account(conn: Connection, ref: str) -> Account | None:
    """By numeric id, client id or name: what an operator types on the command line."""
    condition = sa.or_(accounts.c.client_id == ref, accounts.c.name == ref)
    if ref.isdigit():
        condition = sa.or_(condition, accounts.c.id == int(ref))
    row = conn.execute(
        sa.select(*_ACCOUNT_COLUMNS).where(condition).order_by(accounts.c.id)
    ).first()
    return None if row is None else _account(row)


def list_accounts(conn: Connection) -> list[Account]:
    rows = conn.execute(sa.select(*_ACCOUNT_COLUMNS).order_by(accounts.c.id))
    return [_account(row) for row in rows]


def secret_hash_for(conn: Connection, client_id: str) -> tuple[int, str] | None:
    row = conn.execute(
        sa.select(accounts.c.id, accounts.c.client_secret_hash).where(
            accounts.c.client_id == client_id
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def set_activated(conn: Connection, account_id: int, activated: bool) -> bool:
    result = conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(smtp_activated=activated)
    )
    return result.rowcount > 0


# -- API keys ---------------------------------------------------------------------------------
def create_api_key(
    conn: Connection, *, account_id: int, name: str, key_hash: str, hint: str, now: datetime
) -> int:
    return int(
        conn.execute(
            api_keys.insert()
            .returning(api_keys.c.id)
            .values(
                account_id=account_id, name=name, key_hash=key_hash, key_hint=hint, created_at=now
            )
        ).scalar_one()
    )


def account_for_key(conn: Connection, key_hash: str) -> int | None:
    row = conn.execute(
        sa.select(api_keys.c.account_id).where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else int(row[0])


def revoke_api_key(conn: Connection, key_id: int, now: datetime) -> bool:
    result = conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


def list_api_keys(conn: Connection, account_id: int) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.select(
            api_keys.c.id,
            api_keys.c.name,
            api_keys.c.key_hint,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.id)
    )
    return [dict(row._mapping) for row in rows]


# -- senders ----------------------------------------------------------------------------------
def add_sender(
    conn: Connection, *, account_id: int, email: str, name: str, now: datetime, status: str
) -> bool:
    """Add (or re-activate) a sender; False when it was already there with that status."""
    email = email.lower()
    existing = conn.execute(
        sa.select(senders.c.id, senders.c.status).where(
            senders.c.account_id == account_id, senders.c.email == email
        )
    ).first()
    if existing is None:
        conn.execute(
            senders.insert().values(
                account_id=account_id, email=email, name=name, status=status, created_at=now
            )
        )
        return True
    if existing.status == status:
        return False
    conn.execute(senders.update().where(senders.c.id == existing.id).values(status=status))
    return True


def list_senders(conn: Connection, account_id: int) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.select(senders.c.email, senders.c.name, senders.c.status)
        .where(senders.c.account_id == account_id)
        .order_by(senders.c.id)
    )
    return [dict(row._mapping) for row in rows]


def sender_check(conn: Connection, account_id: int, sender: str) -> tuple[bool, bool]:
    """(the account is SMTP-activated, ``sender`` is one of its active senders)."""
    allowed = (
        sa.select(senders.c.id)
        .where(
            senders.c.account_id == account_id,
            senders.c.email == sender.lower(),
            senders.c.status == "active",
        )
        .exists()
    )
    row = conn.execute(
        sa.select(accounts.c.smtp_activated, allowed).where(accounts.c.id == account_id)
    ).first()
    return (False, False) if row is None else (bool(row[0]), bool(row[1]))
