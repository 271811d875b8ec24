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

Two duties toward the operator live here too: :meth:`Database.check` turns "cannot reach or
open the database" into one :class:`DatabaseUnavailable` line (password hidden) instead of a
driver traceback, and a SQLite file is created 0600 (its -wal and -shm files inherit the mode
from it; an existing file that is more open is tightened), since it holds every stored email.
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
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url

from mailpulse import files
from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage, describe
from mailpulse.failures import OperatorError

T = TypeVar("T")
log = logging.getLogger(__name__)
Job = Callable[[Connection], Any]


@dataclass
class _Pending:
    fn: Job
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_STOP = object()
PG_CONNECT_TIMEOUT = 5  # seconds; an unreachable host fails start-up instead of hanging it
SQLITE_BUSY_SECONDS = 5.0  # a lock held elsewhere longer than this is an outage (503), not a hang
POOL_TIMEOUT = 5  # seconds to wait for a free pooled connection
WRITER_JOIN_SECONDS = 3.0  # on close: the writer may be stuck in a connect; it is a daemon
PING_SECONDS = 2.0
_SQLITE_OUTAGES = (
    "locked",
    "busy",
    "unable to open",
    "disk i/o error",
    "database or disk is full",
    "readonly",
    "read-only",
)


def store_unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The core error for a driver error that means "the store cannot be used now", or None
    for anything else (a bug, a constraint violated: those stay what they are)."""
    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, sa.exc.TimeoutError):  # the pool had no connection to give
        return StoreUnavailable(f"no database connection free: {describe(exc)}")
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, (sa.exc.OperationalError, sa.exc.InterfaceError)
        ):
            return _driver_outage(exc.orig, exc) or (
                StoreUnavailable(describe(exc)) if exc.connection_invalidated else None
            )
        return None
    return _driver_outage(exc, exc)


def _driver_outage(orig: BaseException | None, exc: BaseException) -> StoreUnavailable | None:
    import sqlite3

    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return StoreUnavailable(describe(exc)) if any(m in text for m in _SQLITE_OUTAGES) else None
    if orig is not None and type(orig).__module__.startswith("psycopg"):
        import psycopg

        if isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError)):
            return StoreUnavailable(describe(exc))
        return None
    if isinstance(orig, (ConnectionError, TimeoutError)):
        return StoreUnavailable(describe(exc))
    return None


class DatabaseUnavailable(OperatorError):
    """The database cannot be reached or opened; the message is one line for the operator."""

    exit_status = 69  # EX_UNAVAILABLE


def safe_url(url: str) -> str:
    """``url`` as shown to people: our driver names dropped, the password hidden."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


def describe_connect_error(url: str, exc: BaseException) -> str:
    """One line: which database, and the driver's first line of why it could not be used."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    reason = " ".join(lines[0].split()) if lines else type(orig).__name__
    reason = reason.removeprefix("connection failed: ")
    return f"cannot use the database {safe_url(url)}: {reason}"


def _private_sqlite_file(database: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644 less the umask), in a
    0700 directory when we create that too; tighten an existing file and its companions."""
    path = Path(database)
    try:
        if not path.parent.exists():
            files.private_dir(path.parent)
        files.private_file(path)
    except OSError as exc:
        raise DatabaseUnavailable(describe_connect_error(f"sqlite:///{database}", exc)) from None
    for suffix in ("-wal", "-shm", "-journal"):
        files.tighten(path.with_name(path.name + suffix))


WARM_UP_WAIT_SECONDS = 1.0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, the standard sqlite3 module for SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername in (
        "postgresql",
        "postgres",
    ):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, synchronous: str = "FULL") -> Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            _private_sqlite_file(database)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS},
            pool_size=8,
            max_overflow=8,
            pool_timeout=POOL_TIMEOUT,
        )
        sync_mode = synchronous.upper()
        if sync_mode not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be FULL, NORMAL or EXTRA")

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin (SAVEPOINTs work).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync_mode}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the write lock up front, so two processes never deadlock on upgrade.
            # (Straight to the driver: this runs for every transaction.)
            dbapi_conn = conn.connection.driver_connection
            assert dbapi_conn is not None
            dbapi_conn.execute("BEGIN IMMEDIATE" if conn.info.get("writer") else "BEGIN")

        return engine
    return sa.create_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT},
    )


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
            if self.dialect == "postgresql" and _connection_lost(exc):
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
                    conn = self.engine.connect()
                    conn.info["writer"] = True
                conn = self._commit_batch(conn, batch)
        except Exception as exc:
            unavailable = store_unavailable(exc)
            if unavailable is None:
                raise
            self._fail_batch(batch, unavailable)
            self._outage_hit = unavailable
        if self._outage_hit is not None:
            self._last_reason = self._outage_hit.reason
            self._retry_at = time.monotonic() + outage.failed(self._last_reason)
            self._drop(conn)
            return None, stop
        outage.succeeded()
        return conn, stop

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
                self._outage_hit = store_unavailable(fresh_exc)
                if self._outage_hit is None:
                    raise
        else:
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
                    self._outage_hit = unavailable
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
            conn = self.engine.connect()
            conn.info["writer"] = True
        return conn


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
