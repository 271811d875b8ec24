"""Account access in the store, on SQLite and (when configured) PostgreSQL: unique names with
migration 0003 renaming existing duplicates, status, credential generations, key owners."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from mailpulse.core.access import ACTIVE, DISABLED, AccountState
from mailpulse.store import accounts, migrate
from mailpulse.store.db import Database

T0 = datetime(2026, 12, 1, 9, 0, 0)
AT = "2026-12-01 09:00:00"


def create(db: Database, name: str, client_id: str | None = None) -> int:
    return db.write_sync(
        lambda conn: accounts.create_account(
            conn,
            name=name,
            email="",
            client_id=client_id or f"cid-{name}",
            secret_hash="h",
            activated=True,
            now=T0,
        )
    )


def test_migration_0003_renames_later_duplicates_and_makes_names_unique(db: Database) -> None:
    migrate.downgrade(db.engine, "0002")
    long = "x" * 200
    names = ["acme", "solo", "acme", "acme-2", "acme", long, long]

    def seed(conn: sa.Connection) -> None:
        for n, name in enumerate(names, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO accounts (id, name, email, client_id, client_secret_hash,"
                    f" smtp_activated, created_at) VALUES (:id, :name, '', :cid, 'h', true, '{AT}')"
                ),
                {"id": n, "name": name, "cid": f"c{n}"},
            )

    db.write_sync(seed)
    migrate.upgrade(db.engine)

    rows = db.read_sync(lambda conn: accounts.list_accounts(conn))
    assert [a.name for a in rows] == [
        "acme",  # the oldest keeps its name
        "solo",
        "acme-3",  # "acme-2" is taken by account 4
        "acme-2",
        "acme-4",
        long,
        "x" * 198 + "-2",  # still fits the column
    ]
    assert {(a.status, a.credential_generation) for a in rows} == {(ACTIVE, 0)}
    with pytest.raises(sa.exc.IntegrityError):
        db.write_sync(
            lambda conn: conn.execute(
                sa.text(
                    "INSERT INTO accounts (name, email, client_id, client_secret_hash,"
                    f" smtp_activated, created_at) VALUES ('solo', '', 'c99', 'h', true, '{AT}')"
                )
            )
        )


def test_a_taken_name_is_refused_and_nothing_is_written(db: Database) -> None:
    create(db, "acme")
    with pytest.raises(accounts.NameTaken, match="'acme' exists already"):
        create(db, "acme", client_id="another")
    assert [a.client_id for a in db.read_sync(accounts.list_accounts)] == ["cid-acme"]


def test_rotating_the_secret_and_revoking_tokens_move_to_the_next_generation(
    db: Database,
) -> None:
    acct = create(db, "acme")
    assert db.write_sync(lambda conn: accounts.rotate_secret(conn, acct, "new-hash")) == 1
    assert db.write_sync(lambda conn: accounts.revoke_tokens(conn, acct)) == 2
    assert db.write_sync(lambda conn: accounts.revoke_tokens(conn, 999)) is None
    found = db.read_sync(lambda conn: accounts.credentials_for(conn, "cid-acme"))
    assert found is not None
    assert found.secret_hash == "new-hash"
    assert found.state == AccountState(ACTIVE, 2, True)


def test_status_and_key_owner(db: Database) -> None:
    acct = create(db, "acme")
    key_id = db.write_sync(
        lambda conn: accounts.create_api_key(
            conn, account_id=acct, name="k", key_hash="f" * 64, hint="", now=T0
        )
    )
    assert db.write_sync(lambda conn: accounts.set_status(conn, acct, DISABLED)) is True
    owner = db.read_sync(lambda conn: accounts.key_owner(conn, "f" * 64))
    assert owner == (acct, AccountState(DISABLED, 0, True))
    assert db.read_sync(lambda conn: accounts.account_state(conn, acct)) == owner[1]
    db.write_sync(lambda conn: accounts.revoke_api_key(conn, key_id, T0))
    assert db.read_sync(lambda conn: accounts.key_owner(conn, "f" * 64)) is None
    assert db.read_sync(lambda conn: accounts.account_state(conn, 999)) is None


def test_find_account_prefers_id_then_client_id_then_name(db: Database) -> None:
    first = create(db, "acme", client_id="zeta")
    second = create(db, "zeta", client_id=str(first))
    found = [
        db.read_sync(lambda conn, r=r: accounts.find_account(conn, r))
        for r in [str(first), "zeta", "acme", "nobody", "²", "9" * 40]
    ]
    assert [None if a is None else a.id for a in found] == [first, first, first, None, None, None]
    assert second != first


def test_a_name_taken_by_a_concurrent_creation_is_refused_by_the_index(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first check can race another creation; the unique index has the last word, and the
    refusal leaves the transaction usable (the insert ran in its own savepoint)."""
    create(db, "acme")
    answers = iter([False, True])  # not taken when first asked, taken after the insert failed
    monkeypatch.setattr(accounts, "name_taken", lambda conn, name: next(answers))

    def racing(conn: sa.Connection) -> int:
        with pytest.raises(accounts.NameTaken):
            accounts.create_account(
                conn,
                name="acme",
                email="",
                client_id="late",
                secret_hash="h",
                activated=True,
                now=T0,
            )
        return len(accounts.list_accounts(conn))

    assert db.write_sync(racing) == 1
