"""WAL checkpoints off the commit path (store/checkpoint.py): the writer's COMMITs never
checkpoint, the checkpointer thread does, the log then starts again from its beginning instead
of growing, and nothing committed is lost on the way."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection

from mailpulse.store import checkpoint as checkpoint_module
from mailpulse.store.db import Database

ROW = b"x" * 4000  # about a page each
ROWS = 3000  # past SQLite's auto-checkpoint threshold of 1,000 pages


def _insert(first: int, count: int):  # type: ignore[no-untyped-def]
    def job(conn: Connection) -> None:
        for n in range(first, first + count):
            conn.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (n, ROW))

    return job


async def _fill(db: Database, first: int = 0, rows: int = ROWS, per_job: int = 100) -> None:
    """One COMMIT per 100 rows (a batch of all of them would pass 1,000 pages in one)."""
    for n in range(first, first + rows, per_job):
        await db.write(_insert(n, per_job))


def _wal_frames(path: Path) -> int:
    """Frames in the log that are not yet copied into the database file (read by another
    connection, which neither writes nor checkpoints)."""
    size = path.with_name(path.name + "-wal").stat().st_size
    return max(0, size - 32) // (4096 + 24)


def _open(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "c.db"
    db = Database(f"sqlite:///{path}")
    db.write_sync(lambda c: c.exec_driver_sql("CREATE TABLE t (n INTEGER, b BLOB)"))
    return db, path


async def test_commits_of_the_writer_do_not_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_SECONDS", 3600.0)  # never by itself
    db, path = _open(tmp_path)
    db.start()
    try:
        await _fill(db)
        # SQLite's own auto-checkpoint would have kept the log near 1,000 pages
        assert _wal_frames(path) > 2000
    finally:
        await db.close()


async def test_a_checkpoint_lets_the_next_commit_start_the_log_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_SECONDS", 3600.0)
    db, path = _open(tmp_path)
    db.start()
    try:
        await _fill(db)
        checkpointer = checkpoint_module.WalCheckpointer(db.engine, f"{path}.write-lock")
        lock_fd = os.open(f"{path}.write-lock", os.O_RDWR)
        try:
            with db.engine.connect() as conn:
                checkpointer.checkpoint(conn, lock_fd)
        finally:
            os.close(lock_fd)
        await db.write(_insert(ROWS, 1))
        probe = sqlite3.connect(path)
        busy, log_frames, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        probe.close()
        assert (busy, log_frames) == (0, copied) and log_frames < 10  # started again
    finally:
        await db.close()


async def test_the_checkpointer_runs_by_itself_and_keeps_every_committed_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint_module, "CHECKPOINT_SECONDS", 0.02)
    db, path = _open(tmp_path)
    db.start()
    try:
        for first in range(0, ROWS, 500):
            await _fill(db, first, rows=500)
            await asyncio.sleep(0.05)
        checkpointer = db._checkpointer
        assert checkpointer is not None
        for _ in range(500):  # until it has run at least once more after the last write
            seen = checkpointer.checkpoints
            await asyncio.sleep(0.02)
            if checkpointer.checkpoints > seen:
                break
        assert checkpointer.checkpoints > 0
    finally:
        await db.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT count(DISTINCT n) FROM t").fetchone() == (ROWS,)
    finally:
        check.close()
