"""The outage bookkeeping (core/outage.py), with an injected clock and jitter, and the store
edge's mapping of driver errors to StoreUnavailable (store/outages.py)."""

from __future__ import annotations

import logging
import sqlite3

import pytest
import sqlalchemy as sa

from mailpulse.core.errors import StoreUnavailable
from mailpulse.core.outage import Outage
from mailpulse.store.outages import store_unavailable


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def outage(caplog: pytest.LogCaptureFixture, jitter: float = 1.0) -> tuple[Outage, FakeClock]:
    clock = FakeClock()
    caplog.set_level(logging.WARNING)
    return Outage(
        "writer", logging.getLogger("test.outage"), now=clock, jitter=lambda: jitter
    ), clock


def test_one_line_when_an_outage_starts_and_one_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker, clock = outage(caplog)
    for _ in range(5):
        tracker.failed(OSError("database is locked\nsecond line"))
        clock.t += 3
    tracker.succeeded()
    tracker.succeeded()  # nothing more to say
    assert [r.getMessage() for r in caplog.records] == [
        "writer: store unavailable: database is locked, retrying",
        "writer: store available again after 15 s",
    ]
    assert not tracker.down and tracker.down_for() == 0.0


def test_the_wait_doubles_from_half_a_second_up_to_ten(caplog: pytest.LogCaptureFixture) -> None:
    tracker, _ = outage(caplog, jitter=1.0)
    waits = [tracker.failed("x") for _ in range(8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_jitter_takes_the_wait_down_to_half_never_below(caplog: pytest.LogCaptureFixture) -> None:
    tracker, _ = outage(caplog, jitter=0.0)
    assert [tracker.failed("x") for _ in range(3)] == [0.25, 0.5, 1.0]


def test_the_backoff_starts_over_after_the_store_returns(caplog: pytest.LogCaptureFixture) -> None:
    tracker, clock = outage(caplog)
    for _ in range(6):
        tracker.failed("x")
    clock.t += 42
    assert tracker.down and tracker.down_for() == 42
    tracker.succeeded()
    assert tracker.failed("y") == 0.5
    assert caplog.records[1].getMessage() == "writer: store available again after 42 s"


def _wrapped(
    orig: BaseException, cls: type[sa.exc.DBAPIError] = sa.exc.OperationalError
) -> sa.exc.DBAPIError:
    return cls("SELECT 1", None, orig)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(sqlite3.OperationalError("unable to open database file")),
        sqlite3.OperationalError("database is locked"),
        sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        StoreUnavailable("the writer says so"),
        ConnectionRefusedError("refused"),
    ],
)
def test_driver_errors_that_mean_the_store_is_away_become_store_unavailable(
    error: BaseException,
) -> None:
    mapped = store_unavailable(error)
    assert isinstance(mapped, StoreUnavailable)
    assert (mapped.status, mapped.error_code) == (503, 503)


def test_psycopg_connection_errors_become_store_unavailable() -> None:
    psycopg = pytest.importorskip("psycopg")
    for orig in (
        psycopg.OperationalError("the database system is shutting down"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    ):
        mapped = store_unavailable(_wrapped(orig))
        assert isinstance(mapped, StoreUnavailable), orig
        assert str(orig).split()[0] in mapped.reason


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlite3.OperationalError("no such table: messages")),
        _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), sa.exc.IntegrityError),
        ValueError("a bug"),
    ],
)
def test_bugs_and_refusals_stay_what_they_are(error: BaseException) -> None:
    assert store_unavailable(error) is None
