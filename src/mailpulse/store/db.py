"""The database handle: one engine, a group-committing writer, and readers.

Every write goes through :meth:`Database.write`: jobs from concurrent requests are gathered by a
single writer thread and committed together; when one fails, the batch is rolled back and run
again job by job, so one failing job never spoils its neighbours. The caller's future is
resolved only after the COMMIT has returned, so ``{"result": true}`` is never said of an
uncommitted email. On SQLite this turns
thousands of fsyncs into a few; on PostgreSQL it saves round trips the same way.

Reads run on a small thread pool against their own connections (SQLite in WAL mode lets them
run beside the writer). Which engine is in use is hidden here: callers see only
:class:`sqlalchemy.Connection`.

:meth:`Database.check` turns "cannot reach or open the database" into one
:class:`DatabaseUnavailable` line for the operator (store/engine.py opens the engine and
words that line); a driver error that means the store cannot be used now becomes
:class:`StoreUnavailable` (store/outages.py), and the writer rides out such outages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage
from mailpulse.store.checkpoint import WalCheckpointer
from mailpulse.store.engine import (
    DatabaseUnavailable,
    create_engine,
    describe_connect_error,
    normalise_url,
)
from mailpulse.store.outages import connection_lost, store_unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)
Job = Callable[[Connection], Any]


@dataclass
class _Pending:
    fn: Job
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_STOP = object()
WRITER_JOIN_SECONDS = 3.0  # on close: the writer may be stuck in a connect; it is a daemon
CHECKPOINTER_JOIN_SECONDS = 1.0  # on close: it may wait for the write lock; a daemon too
PING_SECONDS = 2.0
WARM_UP_WAIT_SECONDS = 1.0


class Database:
    """Owns the engine, the writer thread and the reader pool."""

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        batch_max: int = 256,
        readers: int = 4,
        warm_up: Job | None = None,
    ) -> None:
        self.url = normalise_url(url)
        self.engine = create_engine(self.url, synchronous=synchronous)
        self.dialect = self.engine.dialect.name
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-read")
        self._reader_count = readers
        self._warm_up = warm_up
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        self._lock_path = f"{database}.write-lock" if database and database != ":memory:" else None
        self._lock_fd: int | None = None
        # SQLite file: checkpoints by a thread of their own, not inside a COMMIT (checkpoint.py)
        self._checkpointer = (
            WalCheckpointer(self.engine, self._lock_path) if self._lock_path else None
        )
        self._stopped = False
        self._outage = Outage("database writer", log)
        self._retry_at = 0.0
        self._last_reason = ""
        self._outage_hit: StoreUnavailable | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def check(self) -> None:
        """Connect once; raise :class:`DatabaseUnavailable` (one line) if that fails."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except (sa.exc.DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(describe_connect_error(self.url, exc)) from None

    def start(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="db-write", daemon=True)
            self._writer.start()
            if self._checkpointer is not None:
                self._checkpointer.start()
            warming = self._readers.submit(self._open_readers)
            # Before the server takes its first request (the caller is start-up), but never
            # for long: a store that is slow to answer is the requests' business, not start-up's.
            concurrent.futures.wait([warming], timeout=WARM_UP_WAIT_SECONDS)

    def _open_readers(self) -> None:
        """At start, not at the first request: open the readers' connections and run
        ``warm_up`` on each (SQLite parses the schema once per connection, a PostgreSQL
        backend loads its catalog caches, SQLAlchemy compiles each statement once), so the
        first requests after a start cost what later ones do. Best effort: if the store is
        not there yet, the requests will meet the error themselves."""
        conns: list[Connection] = []
        try:
            for _ in range(self._reader_count):
                conns.append(self.engine.connect())
                with conns[-1].begin():
                    if self._warm_up is not None:
                        self._warm_up(conns[-1])
        except Exception as exc:
            log.warning("readers not warmed at start: %s", exc)
        finally:
            for conn in conns:
                conn.close()

    async def close(self) -> None:
        """Stop the writer (bounded: a writer stuck in a connect is a daemon left behind)."""
        writer = self._writer
        if writer is not None:
            self._stopped = True
            self._queue.put(_STOP)
            await asyncio.to_thread(writer.join, WRITER_JOIN_SECONDS)
            self._writer = None
        self._fail_queued()
        self._release_resources()

    def _release_resources(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop(CHECKPOINTER_JOIN_SECONDS)
        self._readers.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close_sync(self) -> None:
        writer = self._writer
        if writer is not None:
            self._stopped = True
            self._queue.put(_STOP)
            writer.join(WRITER_JOIN_SECONDS)
            self._writer = None
        self._fail_queued()
        self._release_resources()

    def _fail_queued(self) -> None:
        """Jobs that arrived after the writer stopped hear so (they would wait forever)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Pending):
                error = StoreUnavailable("the database is closing")
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    item.loop.call_soon_threadsafe(_settle, item.future, None, error)

    # -- health ------------------------------------------------------------------------------
    @property
    def writer_failed(self) -> bool:
        """True when the writer thread has ended without being asked to (a bug)."""
        writer = self._writer
        return writer is not None and not writer.is_alive() and not self._stopped

    @property
    def outage(self) -> Outage:
        """The writer's view of the store (read it, do not drive it)."""
        return self._outage

    async def ping(self) -> None:
        """``SELECT 1`` on a reader, bounded; raises :class:`StoreUnavailable`."""

        def select_one(conn: Connection) -> None:
            conn.exec_driver_sql("SELECT 1")

        try:
            await asyncio.wait_for(self.read(select_one), timeout=PING_SECONDS)
        except TimeoutError:
            raise StoreUnavailable(f"no answer to SELECT 1 within {PING_SECONDS:.0f} s") from None

    # -- the async surface -----------------------------------------------------------------
    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a transaction; return once that transaction is committed.

        Raises :class:`StoreUnavailable` when the store cannot be used (nothing was written)."""
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Pending(fn, loop, future))
        return await future

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a reader; :class:`StoreUnavailable` when the store cannot be used."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self.read_sync, fn)
        except Exception as exc:
            unavailable = store_unavailable(exc)
            if unavailable is None:
                raise
            if self.dialect == "postgresql" and connection_lost(exc):
                self._dispose_pool()
            raise unavailable from exc

    # -- the sync surface (command line, migrations, tests) ----------------------------------
    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            conn.info["writer"] = True
            with conn.begin():
                return fn(conn)

    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn, conn.begin():
            return fn(conn)

    # -- the writer --------------------------------------------------------------------------
    def _write_loop(self) -> None:
        """Never ends but on _STOP: every failure is settled on the jobs it hit."""
        conn: Connection | None = None
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                try:
                    conn, stop = self._run_batch(conn, batch)
                except BaseException as exc:  # a bug here must not strand the callers
                    log.exception("the writer failed a batch of %d jobs", len(batch))
                    self._fail_batch(batch, exc)
                    self._drop(conn)
                    conn = None
                if stop:
                    return
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _run_batch(
        self, conn: Connection | None, batch: list[_Pending]
    ) -> tuple[Connection | None, bool]:
        """Commit ``batch`` (grown in place by whatever is queued); returns the connection to
        keep and whether _STOP was met."""
        outage = self._outage
        if outage.down and time.monotonic() < self._retry_at:
            # Within the backoff: fail at once rather than make every caller wait on the store.
            _, stop = self._drain(batch)
            self._fail_batch(batch, StoreUnavailable(self._last_reason))
            return conn, stop
        stop = False
        self._outage_hit = None
        try:
            with self._writer_lock():
                # Whatever arrived while we waited for the lock joins this batch.
                _, stop = self._drain(batch)
                if conn is None:
                    conn = self._writer_connection()
                conn = self._commit_batch(conn, batch)
        except Exception as exc:
            unavailable = store_unavailable(exc)
            if unavailable is None:
                raise
            self._note_outage(unavailable)
            self._fail_batch(batch, unavailable)
        if self._outage_hit is not None:
            self._drop(conn)
            return None, stop
        outage.succeeded()
        return conn, stop

    def _note_outage(self, unavailable: StoreUnavailable) -> None:
        """Count the store down — before any caller hears of it, so that no caller sees an
        answer the writer's state does not yet explain. Once per batch."""
        if self._outage_hit is not None:
            return
        self._outage_hit = unavailable
        self._last_reason = unavailable.reason
        self._retry_at = time.monotonic() + self._outage.failed(self._last_reason)

    def _fail_batch(self, batch: list[_Pending], error: BaseException) -> None:
        for job in batch:
            # one exception per caller: a shared one would grow a traceback with every raise
            own = StoreUnavailable(error.reason) if isinstance(error, StoreUnavailable) else error
            job.loop.call_soon_threadsafe(_settle, job.future, None, own)

    def _drop(self, conn: Connection | None) -> None:
        """Forget a connection that met an outage (and, on PostgreSQL, the pooled ones: after
        a server restart every one of them is dead)."""
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()
        if self.dialect == "postgresql":
            self._dispose_pool()
        return None

    def _dispose_pool(self) -> None:
        with contextlib.suppress(Exception):
            self.engine.dispose(close=False)

    def _drain(self, batch: list[_Pending]) -> tuple[list[_Pending], bool]:
        while len(batch) < self._batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """Between processes sharing one SQLite file, a blocking file lock hands the write
        lock over at once; SQLite's own busy handler would poll with sleeps of up to 100 ms."""
        if self._lock_path is None:
            yield
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _commit_batch(self, conn: Connection, batch: list[_Pending]) -> Connection:
        """Commit the batch in one transaction. Optimistic: no SAVEPOINTs (they cost as much
        as the inserts); if any job fails, the batch is rolled back and each job is run again
        in a transaction of its own, so only the failing job hears of its error. An outage
        before anything is committed fails the whole batch (raised to :meth:`_run_batch`):
        running each job again would only make each wait for the store in turn."""
        try:
            with conn.begin():
                results = [job.fn(conn) for job in batch]
        except Exception as exc:
            if store_unavailable(exc) is not None:
                raise
            outcomes = self._one_by_one(conn, batch, exc)
            try:
                conn = self._fresh(conn)
            except Exception as fresh_exc:
                unavailable = store_unavailable(fresh_exc)
                if unavailable is None:
                    raise
                self._note_outage(unavailable)
        else:
            # Committed: the store is back before any caller hears so (no caller may see an
            # answer while the writer still counts itself down).
            self._outage.succeeded()
            outcomes = [(job, result, None) for job, result in zip(batch, results, strict=True)]
        for job, result, error in outcomes:
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)
        return conn

    def _one_by_one(
        self, conn: Connection, batch: list[_Pending], exc: Exception
    ) -> list[tuple[_Pending, Any, BaseException | None]]:
        if len(batch) == 1:
            return [(batch[0], None, exc)]
        outcomes: list[tuple[_Pending, Any, BaseException | None]] = []
        for index, job in enumerate(batch):
            try:
                conn = self._fresh(conn)
                with conn.begin():
                    outcomes.append((job, job.fn(conn), None))
            except Exception as job_exc:
                unavailable = store_unavailable(job_exc)
                if unavailable is not None:
                    # the store went meanwhile: this job and the rest hear so (none committed)
                    self._note_outage(unavailable)
                    outcomes.extend(
                        (rest, None, StoreUnavailable(unavailable.reason)) for rest in batch[index:]
                    )
                    break
                outcomes.append((job, None, job_exc))
        return outcomes

    def _fresh(self, conn: Connection) -> Connection:
        """The writer's connection after a failure: a new one if this one was invalidated."""
        if conn.invalidated or conn.closed:
            conn.close()
            conn = self._writer_connection()
        return conn

    def _writer_connection(self) -> Connection:
        conn = self.engine.connect()
        conn.info["writer"] = True
        if self._checkpointer is not None:  # it checkpoints; no COMMIT of this connection does
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            dbapi.execute("PRAGMA wal_autocheckpoint=0")
        return conn


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
