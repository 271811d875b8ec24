"""Start-up warms the readers: their connections are opened and the log's statements run once
before the first request, so that request does not pay for them."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from mailpulse.store import emails, migrate
from mailpulse.store.db import Database
from tests.store.test_store import make_account, message


def test_start_opens_and_warms_every_reader_connection(database_url: str) -> None:
    warmed: list[int] = []
    done = threading.Event()

    def warm(conn: sa.Connection) -> None:
        emails.warm_up(conn)
        warmed.append(id(conn.connection.dbapi_connection))
        if len(warmed) == 4:
            done.set()

    db = Database(database_url, readers=4, warm_up=warm)
    migrate.upgrade(db.engine)
    acct = make_account(db, "a")
    db.write_sync(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org"])))
    connects: list[Any] = []
    sa.event.listen(db.engine, "connect", lambda *_: connects.append(1))
    try:

        async def scenario() -> list[dict[str, Any]]:
            db.start()
            await db.write(lambda c: None)  # the writer has its own connection by now
            assert await asyncio.to_thread(done.wait, 30)  # (only a hang detector)
            for _ in range(3000):  # the warmed connections go back to the pool
                if db.engine.pool.checkedin() >= 4:  # type: ignore[attr-defined]
                    break
                await asyncio.sleep(0.01)
            opened = len(connects)
            rows = await db.read(lambda c: emails.list_log(c, acct, emails.LogFilter()))
            assert len(connects) == opened  # the request found a warm connection
            return rows

        rows = asyncio.run(scenario())
    finally:
        db.close_sync()
    assert len(set(warmed)) == 4
    assert [r.recipient for r in rows] == ["r@e.org"]


def test_a_failing_warm_up_does_not_stop_the_database(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(conn: sa.Connection) -> None:
        raise RuntimeError("no such thing")

    db = Database(database_url, warm_up=broken)
    migrate.upgrade(db.engine)
    acct = make_account(db, "a")

    async def scenario() -> int:
        db.start()
        await db.write(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org"])))
        return await db.read(lambda c: emails.count_log(c, acct))

    try:
        assert asyncio.run(scenario()) == 1
    finally:
        db.close_sync()
    assert "readers not warmed at start: no such thing" in caplog.text


def test_the_log_warm_up_runs_on_either_engine_and_changes_nothing(db: Database) -> None:
    acct = make_account(db, "a")
    db.write_sync(lambda c: emails.insert_message(c, message(acct, 1, ["r@e.org"])))
    db.read_sync(emails.warm_up)
    assert db.read_sync(lambda c: emails.count_log(c, acct)) == 1
    assert db.read_sync(lambda c: emails.count_log(c, 0)) == 0
