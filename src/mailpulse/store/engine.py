"""Opening the database: our drivers, SQLite's PRAGMAs and private files, and the one line an
operator is told when it cannot be used.

A SQLite file is created 0600 (its -wal and -shm files inherit the mode from it; an existing
file that is more open is tightened), since it holds every stored email. Connection errors at
start-up become :class:`DatabaseUnavailable` with the password hidden, never a driver traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url

from mailpulse import files
from mailpulse.failures import OperatorError

PG_CONNECT_TIMEOUT = 5  # seconds; an unreachable host fails start-up instead of hanging it
SQLITE_BUSY_SECONDS = 5.0  # a lock held elsewhere longer than this is an outage (503), not a hang
POOL_TIMEOUT = 5  # seconds to wait for a free pooled connection


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
