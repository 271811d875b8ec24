"""SQLite's WAL checkpoints, moved off the commit path.

Left to itself, SQLite checkpoints inside the COMMIT that takes the write-ahead log past 1,000
pages: that COMMIT copies the log into the database file and fsyncs it before it returns, so
every caller of that batch waits for the copy, and so does the other server process, which is
waiting for the write lock. At 800 accepts a second that is several times a second.

Here the writer's connection has auto-checkpoint off (``PRAGMA wal_autocheckpoint=0``, set by
:class:`~mailpulse.store.db.Database`) and this thread checkpoints instead, every
``interval`` seconds, in two steps:

1. a PASSIVE checkpoint without any lock: it copies what is committed so far while the writers
   go on (SQLite lets a checkpoint run beside a writer); the fsync of the database file is
   paid here, not in a COMMIT;
2. then, holding the writers' ``flock`` (so that no writer is in a transaction), a PASSIVE
   checkpoint of the few pages committed meanwhile: the log is then wholly copied, so the next
   writer starts it again from the beginning instead of growing it.

Durability is unchanged: every COMMIT still fsyncs the log (``synchronous=FULL``), and a
checkpoint only copies committed pages. A failing checkpoint is logged at debug level and tried
again at the next interval (a locked or vanished database is the writer's outage to report).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 0.25


class WalCheckpointer:
    """A daemon thread that checkpoints ``engine``'s SQLite file every ``interval`` seconds."""

    def __init__(self, engine: Engine, lock_path: str, interval: float | None = None) -> None:
        self.engine = engine
        self.lock_path = lock_path
        self.interval = CHECKPOINT_SECONDS if interval is None else interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="db-checkpoint", daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None:
            self._stop.set()
            thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        conn: Connection | None = None
        # Its own open file description: flock() is per description, so the writer's (another
        # description, same process) excludes this one.
        lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not self._stop.wait(self.interval):
                try:
                    if conn is None:
                        conn = self.engine.connect()
                    self.checkpoint(conn, lock_fd)
                except Exception as exc:  # tried again at the next interval
                    log.debug("WAL checkpoint failed: %s", exc)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.invalidate()
                        conn = None
        finally:
            os.close(lock_fd)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def checkpoint(self, conn: Connection, lock_fd: int) -> None:
        """The two steps above, once."""
        _passive(conn)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            _passive(conn)
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        self.checkpoints += 1


def _passive(conn: Connection) -> None:
    # Outside any transaction: a checkpoint cannot run inside one.
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
