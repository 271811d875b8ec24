"""Fixtures for the delivery tests: migrated databases, a loopback DNS server, seeding helpers.

``ddb`` is a migrated database on each engine: a fresh SQLite file (copied from one migrated
template), and — when MAILPULSE_TEST_DATABASE_URL is set — a PostgreSQL schema created once per
test session (emptied before each test, dropped at the end).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailpulse.core.clock import FixedClock
from mailpulse.store import migrate
from mailpulse.store.db import Database
from mailpulse.store.engine import normalise_url
from mailpulse.store.tables import metadata
from tests.delivery.helpers import T0
from tests.support.databases import ENGINES, PG_ENV, pg_schema
from tests.support.databases import PG_SKIP_REASON as PG_SKIP
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import free_port


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with pg_schema(base, "mp_delivery") as url:
        engine = sa.create_engine(normalise_url(url))
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def _database_url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if engine == "sqlite":
        path = tmp_path / "mailpulse.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    engine_ = sa.create_engine(normalise_url(url))
    names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
    with engine_.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    engine_.dispose()
    return url


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _database_url(request.param, request, tmp_path)


@pytest.fixture
def ddb(database_url: str) -> Iterator[Database]:
    """A migrated, empty database on each engine."""
    database = Database(database_url, synchronous="NORMAL")
    yield database
    database.close_sync()


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _database_url("sqlite", request, tmp_path)


@pytest.fixture
def sdb(sqlite_url: str) -> Iterator[Database]:
    """A migrated, empty SQLite database (for tests about SMTP rather than the store)."""
    database = Database(sqlite_url, synchronous="NORMAL")
    yield database
    database.close_sync()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.fixture
def mx_port() -> int:
    """One port for every sink of a test (the MX port is one setting); free on 127.0.0.2."""
    return free_port("127.0.0.2")
