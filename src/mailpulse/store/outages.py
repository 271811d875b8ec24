"""Which driver errors mean "the store cannot be used now" (an outage: 503 and retry), as
opposed to a bug or a violated constraint, which stay what they are."""

from __future__ import annotations

import sqlalchemy as sa

from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import describe

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


def connection_lost(exc: BaseException) -> bool:
    """The pool invalidated the connection: it must not be used again."""
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
