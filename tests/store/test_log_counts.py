"""The kept count of each account's email log (log_counts, migration 0004): exact after every
commit, untouched by rollbacks, per tenant, back-filled by the migration. On SQLite and, when
configured, PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from mailpulse.store import emails, migrate
from mailpulse.store.db import Database
from mailpulse.store.tables import deliveries, delivery_queue, log_counts
from tests.store.test_store import T0, make_account, message
from tests.support.server import RunningServer, Tenant


def counted(db: Database, account_id: int) -> int:
    """The kept count, as GET /smtp/emails/total reads it."""
    return db.read_sync(lambda c: emails.count_log(c, account_id))


def rows_of(db: Database, account_id: int) -> int:
    """The rows themselves, counted the slow way."""
    query = sa.select(sa.func.count()).where(deliveries.c.account_id == account_id)
    return int(db.read_sync(lambda c: c.execute(query).scalar_one()))


def send_burst(server: RunningServer, tenant: Tenant, recipients: list[list[str]]) -> None:
    """Concurrent sends, so the writer commits several in one transaction."""

    async def burst() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=tenant.auth, timeout=30) as h:

            async def one(to: list[str]) -> None:
                payload = {
                    "email": {
                        "subject": "Hello",
                        "text": "Hello world",
                        "from": {"name": "Acme", "email": tenant.sender},
                        "to": [{"email": address} for address in to],
                    }
                }
                answer = await h.post("/smtp/emails", json=payload)
                assert answer.status_code == 200, answer.text

            await asyncio.gather(*(one(to) for to in recipients))

    asyncio.run(burst())


def test_total_is_exact_after_sends_through_the_api(any_server: RunningServer) -> None:
    alice = any_server.tenant("alice", "a@alice.example")
    bob = any_server.tenant("bob", "b@bob.example")
    send_burst(any_server, alice, [[f"r{n}@example.org"] for n in range(25)])
    send_burst(any_server, alice, [[f"x{n}@example.org", f"y{n}@example.org"] for n in range(5)])
    send_burst(any_server, bob, [["r@example.org"]] * 3)
    db = any_server.runtime.db
    with any_server.client() as http:
        alice_total = http.get("/smtp/emails/total", headers=alice.auth).json()
        bob_total = http.get("/smtp/emails/total", headers=bob.auth).json()
    assert alice_total == {"total": 35} and rows_of(db, alice.id) == 35
    assert bob_total == {"total": 3} and rows_of(db, bob.id) == 3


def test_a_rolled_back_insert_leaves_the_count_as_it_was(db: Database) -> None:
    acct = make_account(db, "a")
    db.write_sync(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org"])))

    def insert_then_fail(conn: sa.Connection) -> None:
        emails.insert_message(conn, message(acct, 2, ["r@e.org", "s@e.org"]))
        assert emails.count_log(conn, acct) == 3  # counted inside the transaction…
        raise RuntimeError("the caller gives up")

    with pytest.raises(RuntimeError):
        db.write_sync(insert_then_fail)
    assert counted(db, acct) == 1  # …and gone with it
    assert rows_of(db, acct) == 1


def test_a_failing_job_in_a_group_commit_is_not_counted(db: Database) -> None:
    acct = make_account(db, "a")

    async def scenario() -> list[object]:
        db.start()
        jobs = [
            db.write(lambda c, n=n: emails.insert_message(c, message(acct, n, ["r@e.org"])))
            for n in range(12)
        ]
        duplicate = message(acct, 3, ["r@e.org", "t@e.org"])  # its public ids exist already
        jobs.append(db.write(lambda c: emails.insert_message(c, duplicate)))
        return await asyncio.gather(*jobs, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[-1], sa.exc.IntegrityError)
    assert counted(db, acct) == 12 == rows_of(db, acct)


def test_each_account_has_its_own_count(db: Database) -> None:
    a, b, c = make_account(db, "a"), make_account(db, "b"), make_account(db, "c")
    for n in range(3):
        db.write_sync(lambda conn, n=n: emails.insert_message(conn, message(a, n, ["r@e.org"])))
    db.write_sync(lambda conn: emails.insert_message(conn, message(b, 9, ["r@e.org", "s@e.org"])))
    assert (counted(db, a), counted(db, b), counted(db, c)) == (3, 2, 0)
    stored = db.read_sync(
        lambda conn: conn.execute(sa.select(log_counts.c.account_id).distinct()).scalars().all()
    )
    assert sorted(stored) == [a, b]


def test_concurrent_writers_keep_the_count_exact(database_url: str) -> None:
    """Three databases, as three API processes: their transactions overlap on PostgreSQL (and
    take turns on SQLite), adding to the same accounts' counts."""
    writers = [Database(database_url) for _ in range(3)]
    migrate.upgrade(writers[0].engine)
    a, b = make_account(writers[0], "a"), make_account(writers[0], "b")

    async def burst(db: Database, base: int) -> None:
        db.start()
        jobs = [
            db.write(
                lambda c, n=n: emails.insert_message(
                    c, message((a, b)[n % 2], base + n, ["r@e.org", "s@e.org"][: 1 + n % 3 // 2])
                )
            )
            for n in range(120)
        ]
        await asyncio.gather(*jobs)

    async def all_of_them() -> None:
        await asyncio.gather(*(burst(db, 1000 * i) for i, db in enumerate(writers)))

    try:
        asyncio.run(all_of_them())
        first = writers[0]
        assert counted(first, a) == rows_of(first, a) > 0
        assert counted(first, b) == rows_of(first, b) > 0
        assert counted(first, a) + counted(first, b) == 3 * (120 + 40)
    finally:
        for db in writers:
            db.close_sync()


def test_deleted_records_are_taken_off_the_count(db: Database) -> None:
    acct = make_account(db, "a")
    db.write_sync(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org", "s@e.org"])))

    def delete_one(conn: sa.Connection) -> None:
        gone = sa.select(deliveries.c.id).where(deliveries.c.recipient == "s@e.org")
        conn.execute(delivery_queue.delete().where(delivery_queue.c.delivery_id.in_(gone)))
        conn.execute(deliveries.delete().where(deliveries.c.id.in_(gone)))

    db.write_sync(delete_one)
    assert counted(db, acct) == 1 == rows_of(db, acct)


def test_a_filtered_count_still_counts_the_matching_records(db: Database) -> None:
    acct = make_account(db, "a")
    for n in range(3):
        at = T0 + timedelta(hours=n)
        db.write_sync(
            lambda c, n=n, at=at: emails.insert_message(
                c, message(acct, n, [f"r{n % 2}@e.org"], at)
            )
        )
    only_r0 = emails.LogFilter(recipient="R0@e.org")
    later = emails.LogFilter(since=T0 + timedelta(hours=1))
    assert db.read_sync(lambda c: emails.count_log(c, acct, only_r0)) == 2
    assert db.read_sync(lambda c: emails.count_log(c, acct, later)) == 2
    assert db.read_sync(lambda c: emails.count_log(c, acct, emails.LogFilter(limit=1))) == 3


def test_the_migration_back_fills_the_counts_of_existing_records(db: Database) -> None:
    before_0004 = ScriptDirectory.from_config(migrate._config()).get_revision("0004").down_revision
    assert isinstance(before_0004, str)
    migrate.downgrade(db.engine, before_0004)
    a, b = make_account(db, "a"), make_account(db, "b")
    for n in range(4):
        db.write_sync(lambda c, n=n: emails.insert_message(c, message(a, n, ["r@e.org"])))
    db.write_sync(lambda c: emails.insert_message(c, message(b, 9, ["r@e.org", "s@e.org"])))

    migrate.upgrade(db.engine)
    assert (counted(db, a), counted(db, b)) == (4, 2)
    db.write_sync(lambda c: emails.insert_message(c, message(a, 5, ["r@e.org"])))
    assert counted(db, a) == 5 == rows_of(db, a)
