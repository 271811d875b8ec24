"""The group-commit writer under an outage (store/db.py): a write lock held by another
connection past the busy timeout fails the job with StoreUnavailable (nothing written), the
writer thread lives on, jobs queued within the backoff fail at once instead of waiting on the
store, and it commits again by itself once the lock is gone."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.core.errors import StoreUnavailable
from mailpulse.store import engine as engine_module
from mailpulse.store.db import Database


def _insert(value: int):  # type: ignore[no-untyped-def]
    def job(conn: Connection) -> int:
        conn.exec_driver_sql(f"INSERT INTO t VALUES ({value})")
        return value

    return job


async def test_the_writer_survives_a_lock_held_elsewhere_and_fails_fast_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.db"
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_SECONDS", 0.3)
    db = Database(f"sqlite:///{path}")
    db.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (v INTEGER)"))
    db.start()
    try:
        assert await db.write(_insert(1)) == 1
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable) as first:
            await db.write(_insert(2))
        assert "locked" in first.value.reason
        assert db.outage.down and not db.writer_failed
        # within the backoff: refused at once, the store is not even asked
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(db.write(_insert(3)), timeout=30)
        holder.execute("ROLLBACK")
        holder.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert await db.write(_insert(4)) == 4
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the writer never came back"
                await asyncio.sleep(0.2)
        assert not db.outage.down and not db.writer_failed
        rows = await db.read(lambda c: sorted(v for (v,) in c.execute(sa.text("SELECT v FROM t"))))
        assert rows[0] == 1 and rows[-1] == 4 and 2 not in rows and 3 not in rows
    finally:
        await db.close()
