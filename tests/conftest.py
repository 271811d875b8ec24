"""Shared fixtures: real databases (SQLite files, PostgreSQL when configured) and a real
HTTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import settings as hypothesis_settings

from mailpulse.core import auth
from mailpulse.store import migrate
from mailpulse.store.db import Database
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.server import RunningServer, running_server

# No timing is asserted in a test, hypothesis's per-example deadline included.
hypothesis_settings.register_profile("mailpulse", deadline=None)
hypothesis_settings.load_profile("mailpulse")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against MAILPULSE_TEST_DATABASE_URL")
    config.addinivalue_line("markers", "outage: the store goes away mid-burst (tests/outage/)")


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 with its production cost makes every test account take ~0.2 s; the tests check
    what is stored and verified, not how hard it is to brute-force, so they use a light cost."""
    saved = auth._hasher, auth._DUMMY_HASH
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    auth._DUMMY_HASH = auth._hasher.hash("mailpulse-dummy-secret")
    yield
    auth._hasher, auth._DUMMY_HASH = saved


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database.engine)
    yield database
    database.close_sync()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server on SQLite (the default engine); API tests need not run twice."""
    with running_server(f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "var") as running:
        yield running


@pytest.fixture(params=ENGINES)
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A server on each engine: for the tests whose point is the store."""
    with (
        fresh_database_url(request.param, tmp_path) as url,
        running_server(url, tmp_path / "var") as running,
    ):
        yield running
