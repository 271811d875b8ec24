"""The store on real SQLite files and, when configured, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mailpulse.core.model import NewDelivery, NewMessage
from mailpulse.store import accounts, emails, migrate
from mailpulse.store.db import Database
from mailpulse.store.tables import messages

T0 = datetime(2026, 5, 1, 9, 0, 0)


def make_account(db: Database, name: str) -> int:
    return db.write_sync(
        lambda conn: accounts.create_account(
            conn,
            name=name,
            email="",
            client_id=f"cid-{name}",
            secret_hash="x",
            activated=True,
            now=T0,
        )
    )


def message(account_id: int, n: int, recipients: list[str], at: datetime = T0) -> NewMessage:
    return NewMessage(
        account_id=account_id,
        source="api",
        envelope_from="s@example.com",
        sender="S@example.com",
        subject=f"subject {n}",
        message_id_header=f"<{n}@test>",
        raw=b"Subject: x\r\n\r\nbody\r\n",
        sender_ip="10.0.0.1",
        template_id=None,
        created_at=at,
        deliveries=tuple(
            NewDelivery(public_id=f"{account_id:06d}-{n:06d}-{i:02d}", recipient=r, kind="to")
            for i, r in enumerate(recipients)
        ),
    )


def test_migrations_go_down_and_up_again(db: Database) -> None:
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    migrate.downgrade(db.engine)
    assert migrate.current_revision(db.engine) is None
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()


def test_a_message_and_its_deliveries_are_stored_together(db: Database) -> None:
    acct = make_account(db, "a")
    db.write_sync(
        lambda c: emails.insert_message(c, message(acct, 1, ["X@Example.org", "y@e.org"]))
    )
    rows = db.read_sync(lambda c: emails.list_log(c, acct, emails.LogFilter()))
    assert sorted(r.recipient for r in rows) == ["x@example.org", "y@e.org"]
    assert {r.status for r in rows} == {"queued"}
    assert {r.sender for r in rows} == {"s@example.com"}
    assert all(r.total_size == len(b"Subject: x\r\n\r\nbody\r\n") for r in rows)


def test_log_queries_are_scoped_to_the_account(db: Database) -> None:
    a, b = make_account(db, "a"), make_account(db, "b")
    db.write_sync(lambda c: emails.insert_message(c, message(a, 1, ["r@e.org"])))
    db.write_sync(lambda c: emails.insert_message(c, message(b, 2, ["r@e.org"])))
    a_id = f"{a:06d}-000001-00"
    assert db.read_sync(lambda c: emails.count_log(c, a)) == 1
    assert db.read_sync(lambda c: emails.get_log_records(c, b, [a_id])) == []
    assert [r.public_id for r in db.read_sync(lambda c: emails.get_log_records(c, a, [a_id]))] == [
        a_id
    ]
    only_b = db.read_sync(lambda c: emails.list_log(c, b, emails.LogFilter(recipient="r@e.org")))
    assert [r.subject for r in only_b] == ["subject 2"]


def test_date_window_is_inclusive_start_exclusive_end(db: Database) -> None:
    acct = make_account(db, "a")
    for n in range(4):
        at = T0 + timedelta(hours=n)
        db.write_sync(
            lambda c, n=n, at=at: emails.insert_message(c, message(acct, n, ["r@e.org"], at))
        )
    flt = emails.LogFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    rows = db.read_sync(lambda c: emails.list_log(c, acct, flt))
    assert [r.subject for r in rows] == ["subject 2", "subject 1"]


def test_group_commit_keeps_a_failing_job_from_spoiling_its_neighbours(db: Database) -> None:
    acct = make_account(db, "a")

    async def scenario() -> list[object]:
        db.start()
        jobs = []
        for n in range(20):
            msg = message(acct, n, ["r@e.org"])
            jobs.append(db.write(lambda c, msg=msg: emails.insert_message(c, msg)))
        # a duplicate public id: violates the unique constraint inside the same batches
        dup = message(acct, 5, ["r@e.org"])
        jobs.append(db.write(lambda c: emails.insert_message(c, dup)))
        return await asyncio.gather(*jobs, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, int) for o in outcomes[:20])
    assert isinstance(outcomes[20], sa.exc.IntegrityError)
    assert db.read_sync(lambda c: emails.count_log(c, acct)) == 20
    # the failed job left no half-written message behind
    assert (
        db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(messages)).scalar())
        == 20
    )


def test_write_resolves_only_after_the_rows_are_readable(db: Database) -> None:
    acct = make_account(db, "a")

    async def scenario() -> int:
        db.start()
        await db.write(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org"])))
        # a different connection sees the committed row at once
        return await db.read(lambda c: emails.count_log(c, acct))

    assert asyncio.run(scenario()) == 1


def test_senders_are_per_account(db: Database) -> None:
    a, b = make_account(db, "a"), make_account(db, "b")
    db.write_sync(
        lambda c: accounts.add_sender(
            c, account_id=a, email="Me@Brand.example", name="", now=T0, status="active"
        )
    )
    assert db.read_sync(lambda c: accounts.sender_allowed(c, a, "me@brand.example")) is True
    assert db.read_sync(lambda c: accounts.sender_allowed(c, b, "Me@brand.example")) is False


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (emails.LogFilter(), "ix_deliveries_account_created"),
        (emails.LogFilter(recipient="r@e.org"), "ix_deliveries_account_recipient"),
        (emails.LogFilter(sender="s@example.com"), "ix_deliveries_account_sender"),
    ],
)
def test_log_listing_is_served_by_an_account_index_on_sqlite(
    db: Database, flt: emails.LogFilter, index: str
) -> None:
    if db.dialect != "sqlite":
        pytest.skip("the plan check reads SQLite's EXPLAIN QUERY PLAN")
    acct = make_account(db, "a")

    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        db.read_sync(lambda c: emails.list_log(c, acct, flt))
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    [(statement, parameters)] = seen

    def plan(conn: sa.Connection) -> str:
        explained = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return " ".join(str(r[-1]) for r in explained)

    text = db.read_sync(plan)
    assert index in text
    assert "SCAN deliveries" not in text.replace(f"USING INDEX {index}", "")


def test_sender_checks_are_cached_briefly_then_asked_again(db: Database) -> None:
    from mailpulse.core.access import AccessControl
    from mailpulse.core.auth import TokenSigner
    from mailpulse.core.clock import FixedClock
    from mailpulse.store.gateway import SqlAccessStore, SqlSubmitStore

    acct = make_account(db, "a")
    db.write_sync(
        lambda c: accounts.add_sender(
            c, account_id=acct, email="me@brand.example", name="", now=T0, status="active"
        )
    )
    clock = FixedClock(T0)
    access = AccessControl(SqlAccessStore(db), TokenSigner("k" * 40), clock, cache_seconds=2.0)
    store = SqlSubmitStore(db, access)

    async def check() -> tuple[bool, bool]:
        return await store.sender_check(acct, "Me@Brand.example")

    assert asyncio.run(check()) == (True, True)
    db.write_sync(lambda c: accounts.set_activated(c, acct, False))
    clock.advance(seconds=1.9)
    assert asyncio.run(check()) == (True, True)
    clock.advance(seconds=0.2)
    assert asyncio.run(check()) == (False, True)


def test_two_databases_on_one_sqlite_file_write_side_by_side(tmp_path: object) -> None:
    """As two server processes do: each has its own writer; the file lock takes turns."""
    from pathlib import Path

    url = f"sqlite:///{Path(str(tmp_path)) / 'shared.db'}"
    first, second = Database(url), Database(url)
    migrate.upgrade(first.engine)
    acct = make_account(first, "a")

    async def burst(db: Database, base: int) -> list[int]:
        db.start()
        jobs = [
            db.write(lambda c, n=n: emails.insert_message(c, message(acct, base + n, ["r@e.org"])))
            for n in range(150)
        ]
        return await asyncio.gather(*jobs)

    async def both() -> None:
        await asyncio.gather(burst(first, 0), burst(second, 1000))

    asyncio.run(both())
    assert first.read_sync(lambda c: emails.count_log(c, acct)) == 300
    first.close_sync()
    second.close_sync()


def test_migration_0002_moves_pending_deliveries_into_the_queue(db: Database) -> None:
    """Rows queued under revision 0001 are still queued, with their lease, after 0002."""
    migrate.downgrade(db.engine, "0001")
    at = "2026-05-01 09:00:00"

    def seed_0001(conn: sa.Connection) -> None:
        conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, email, client_id, client_secret_hash,"
            f" smtp_activated, created_at) VALUES (1, 'a', '', 'c', 'x', true, '{at}')"
        )
        conn.execute(
            sa.text(
                "INSERT INTO messages (id, account_id, source, envelope_from, sender, subject,"
                " message_id_header, total_size, sender_ip, raw, created_at) VALUES"
                f" (1, 1, 'api', 's@e.org', 's@e.org', '', '', 1, '', :raw, '{at}')"
            ),
            {"raw": b"A"},
        )
        for n, (state, lease) in enumerate(
            [("queued", None), ("deferred", "w1"), ("delivered", None)], start=1
        ):
            owner = f"'{lease}'" if lease else "NULL"
            conn.exec_driver_sql(
                "INSERT INTO deliveries (id, public_id, account_id, message_id, recipient,"
                " recipient_domain, kind, sender, status, created_at, updated_at,"
                f" next_attempt_at, lease_owner) VALUES ({n}, 'p{n}', 1, 1, 'r{n}@e.org',"
                f" 'e.org', 'to', 's@e.org', '{state}', '{at}', '{at}', '{at}', {owner})"
            )

    db.write_sync(seed_0001)
    migrate.upgrade(db.engine)

    def queue(conn: sa.Connection) -> list[tuple[object, ...]]:
        rows = conn.exec_driver_sql(
            "SELECT delivery_id, lease_owner FROM delivery_queue ORDER BY delivery_id"
        )
        return [tuple(r) for r in rows]

    assert db.read_sync(queue) == [(1, None), (2, "w1")]
