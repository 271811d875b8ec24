"""Test databases: a fresh SQLite file, or a fresh schema in the PostgreSQL that
MAILPULSE_TEST_DATABASE_URL names (CI sets it; elsewhere the PostgreSQL cases skip)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from mailpulse.store.engine import normalise_url

PG_ENV = "MAILPULSE_TEST_DATABASE_URL"
PG_SKIP_REASON = f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pg_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@contextmanager
def fresh_database_url(engine: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of the given kind, removed afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'mailpulse.db'}"
        return
    base = pg_base_url()
    if base is None:
        pytest.skip(PG_SKIP_REASON)
    with pg_schema(base, "mp_test") as url:
        yield url


@contextmanager
def pg_schema(base: str, prefix: str) -> Iterator[str]:
    """A throwaway schema in the PostgreSQL at ``base``; the URL sets it as search_path."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
    admin = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
