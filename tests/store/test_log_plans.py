"""The SQLite query plans of the email log, without statistics (mailpulse never runs ANALYZE):
each query the API can send is led by the index that makes it cheap at ten million records.

A wrong choice here is invisible on a small database and costs 0.2–3 s on a big one (500 ids
looked up by walking the account's whole created-at index; recipient + sender led by the
sender index), so the plans themselves are checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mailpulse.store import bounces, emails
from mailpulse.store.db import Database
from tests.store.test_store import T0, make_account, message

DAY = {"since": T0, "until": T0 + timedelta(days=1)}


@pytest.fixture
def sqlite_db(db: Database) -> Database:
    if db.dialect != "sqlite":
        pytest.skip("reads SQLite's EXPLAIN QUERY PLAN (PostgreSQL plans from its statistics)")
    assert not db.read_sync(
        lambda c: (
            c.exec_driver_sql("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            .scalars()
            .all()
        )
    )
    return db


@contextmanager
def statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def plans(db: Database, call: Callable[[sa.Connection], object]) -> list[str]:
    """Run ``call`` and return the plan of each SELECT it sent, as one line each."""
    with statements(db) as seen:
        db.read_sync(call)

    def explain(conn: sa.Connection) -> list[str]:
        return [
            " / ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {s}", p))
            for s, p in seen
            if s.lstrip().upper().startswith("SELECT")
        ]

    return db.read_sync(explain)


def some_log(db: Database) -> int:
    acct = make_account(db, "a")
    db.write_sync(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org", "q@e.org"])))
    return acct


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_deliveries_account_created"),
        (DAY, "ix_deliveries_account_created"),
        ({"recipient": "r@e.org"}, "ix_deliveries_account_recipient"),
        ({"recipient": "r@e.org", **DAY}, "ix_deliveries_account_recipient"),
        ({"recipient": "r@e.org", "sender": "s@example.com"}, "ix_deliveries_account_recipient"),
        (
            {"recipient": "r@e.org", "sender": "s@example.com", **DAY},
            "ix_deliveries_account_recipient",
        ),
        ({"sender": "s@example.com"}, "ix_deliveries_account_sender"),
        ({"sender": "s@example.com", **DAY}, "ix_deliveries_account_sender"),
    ],
)
def test_each_log_listing_is_led_by_its_index(
    sqlite_db: Database, filters: dict[str, Any], index: str
) -> None:
    acct = some_log(sqlite_db)
    flt = emails.LogFilter(**filters)
    found = plans(sqlite_db, lambda c: emails.list_log(c, acct, flt))
    page = found[0]
    assert f"deliveries USING COVERING INDEX {index}" in page or f"USING INDEX {index} " in page
    assert all("SCAN deliveries" not in p and "SCAN messages" not in p for p in found)


def test_records_by_id_are_looked_up_by_their_unique_id(sqlite_db: Database) -> None:
    acct = some_log(sqlite_db)
    ids = [f"{acct:06d}-000001-00"] + [f"zzzzzz-{n:06d}-00" for n in range(499)]
    for wanted in (ids[:1], ids):
        [plan] = plans(sqlite_db, lambda c, w=wanted: emails.get_log_records(c, acct, w))
        assert "(public_id=?)" in plan, plan
        assert "ix_deliveries_account" not in plan and "SCAN deliveries" not in plan
    found = sqlite_db.read_sync(lambda c: emails.get_log_records(c, acct, ids))
    assert [r.public_id for r in found] == ids[:1]


def test_the_total_reads_the_kept_count_not_the_log(sqlite_db: Database) -> None:
    acct = some_log(sqlite_db)
    [plan] = plans(sqlite_db, lambda c: emails.count_log(c, acct))
    assert "log_counts" in plan and "deliveries" not in plan


def test_a_days_bounces_are_read_from_the_bounce_index(sqlite_db: Database) -> None:
    """GET /smtp/bounces/day and its total: one range of (account_id, created_at, id)."""
    acct = make_account(sqlite_db, "b")
    since, until = DAY["since"], DAY["until"]
    listed = plans(sqlite_db, lambda c: bounces.list_between(c, acct, since, until, 100, 0))
    counted = plans(sqlite_db, lambda c: bounces.count_between(c, acct, since, until))
    for plan in listed + counted:
        assert "ix_bounces_account_created" in plan, plan
    assert "TEMP B-TREE" not in listed[0], listed  # the index gives the order: no sort
