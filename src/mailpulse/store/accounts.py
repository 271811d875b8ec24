"""Queries for the account aggregate: accounts, their API keys and their senders.

Account names are unique (index ``uq_accounts_name``, migration 0003): operators address
accounts by name on the command line, so a second account of a taken name is refused with
:class:`NameTaken` rather than left to shadow the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.core.access import ACTIVE, AccountState
from mailpulse.store.tables import accounts, api_keys, senders
from mailpulse.store.text import storable


class NameTaken(ValueError):
    """An account of that name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an account named {name!r} exists already")
        self.name = name


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    email: str
    client_id: str
    smtp_activated: bool
    created_at: datetime
    status: str = ACTIVE
    credential_generation: int = 0


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        id=int(m["id"]),
        name=str(m["name"]),
        email=str(m["email"]),
        client_id=str(m["client_id"]),
        smtp_activated=bool(m["smtp_activated"]),
        created_at=m["created_at"],
        status=str(m["status"]),
        credential_generation=int(m["credential_generation"]),
    )


_ACCOUNT_COLUMNS = [
    accounts.c.id,
    accounts.c.name,
    accounts.c.email,
    accounts.c.client_id,
    accounts.c.smtp_activated,
    accounts.c.created_at,
    accounts.c.status,
    accounts.c.credential_generation,
]
_STATE_COLUMNS = [accounts.c.status, accounts.c.credential_generation, accounts.c.smtp_activated]


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
    """The new account's id; :class:`NameTaken` when the name is taken (checked first for a
    clear answer, and by the unique index against a concurrent creation)."""
    if name_taken(conn, name):
        raise NameTaken(name)
    try:
        with conn.begin_nested():
            return _insert_account(conn, name, email, client_id, secret_hash, activated, now)
    except sa.exc.IntegrityError:
        if name_taken(conn, name):
            raise NameTaken(name) from None
        raise


def name_taken(conn: Connection, name: str) -> bool:
    found = conn.execute(sa.select(accounts.c.id).where(accounts.c.name == name)).first()
    return found is not None


def _insert_account(
    conn: Connection,
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
    """By numeric id, client id or name — what an operator types on the command line — in
    that order of precedence when one reference could mean two accounts."""
    conditions = [accounts.c.client_id == ref, accounts.c.name == ref]
    if ref.isascii() and ref.isdigit() and len(ref) < 19:
        conditions.insert(0, accounts.c.id == int(ref))
    for condition in conditions:
        row = conn.execute(sa.select(*_ACCOUNT_COLUMNS).where(condition)).first()
        if row is not None:
            return _account(row)
    return None


def list_accounts(conn: Connection) -> list[Account]:
    rows = conn.execute(sa.select(*_ACCOUNT_COLUMNS).order_by(accounts.c.id))
    return [_account(row) for row in rows]


@dataclass(frozen=True)
class Credentials:
    """What the token endpoint needs, read in one statement so that the secret checked and
    the generation put in the token belong together."""

    account_id: int
    secret_hash: str
    state: AccountState


def secret_hash_for(conn: Connection, client_id: str) -> tuple[int, str] | None:
    found = credentials_for(conn, client_id)
    return None if found is None else (found.account_id, found.secret_hash)


def credentials_for(conn: Connection, client_id: str) -> Credentials | None:
    if not storable(client_id):
        return None
    row = conn.execute(
        sa.select(accounts.c.id, accounts.c.client_secret_hash, *_STATE_COLUMNS).where(
            accounts.c.client_id == client_id
        )
    ).first()
    if row is None:
        return None
    return Credentials(int(row[0]), str(row[1]), _state(tuple(row[2:])))


def _state(values: tuple[object, ...]) -> AccountState:
    status, generation, activated = values
    return AccountState(str(status), int(str(generation)), bool(activated))


def account_state(conn: Connection, account_id: int) -> AccountState | None:
    row = conn.execute(sa.select(*_STATE_COLUMNS).where(accounts.c.id == account_id)).first()
    return None if row is None else _state(tuple(row))


def set_activated(conn: Connection, account_id: int, activated: bool) -> bool:
    result = conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(smtp_activated=activated)
    )
    return result.rowcount > 0


def set_status(conn: Connection, account_id: int, status: str) -> bool:
    """Set the API status (active / disabled); False when the account does not exist."""
    result = conn.execute(
        accounts.update().where(accounts.c.id == account_id).values(status=status)
    )
    return result.rowcount > 0


def rotate_secret(conn: Connection, account_id: int, secret_hash: str) -> int | None:
    """Store a new secret hash and move to the next credential generation, in one statement:
    the old secret and every token issued with it stop working together. Returns the new
    generation, or None when the account does not exist."""
    return _next_generation(conn, account_id, client_secret_hash=secret_hash)


def revoke_tokens(conn: Connection, account_id: int) -> int | None:
    """Move to the next credential generation: every token issued before stops working."""
    return _next_generation(conn, account_id)


def _next_generation(conn: Connection, account_id: int, **values: object) -> int | None:
    found = conn.execute(
        accounts.update()
        .where(accounts.c.id == account_id)
        .values(credential_generation=accounts.c.credential_generation + 1, **values)
        .returning(accounts.c.credential_generation)
    ).first()
    return None if found is None else int(found[0])


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
    found = key_owner(conn, key_hash)
    return None if found is None else found[0]


def key_owner(conn: Connection, key_hash: str) -> tuple[int, AccountState] | None:
    """The account of an unrevoked key and that account's state, in one read."""
    row = conn.execute(
        sa.select(api_keys.c.account_id, *_STATE_COLUMNS)
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
    ).first()
    return None if row is None else (int(row[0]), _state(tuple(row[1:])))


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


def sender_allowed(conn: Connection, account_id: int, sender: str) -> bool:
    """Whether ``sender`` is one of the account's active senders."""
    row = conn.execute(
        sa.select(senders.c.id).where(
            senders.c.account_id == account_id,
            senders.c.email == sender.lower(),
            senders.c.status == "active",
        )
    ).first()
    return row is not None
