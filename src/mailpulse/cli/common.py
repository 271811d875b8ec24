"""What every command group shares: one-line failures, the migrated database, an account
looked up by what an operator types, and printing as lines or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy import Connection

from mailpulse import files
from mailpulse.config import ConfigError, Settings, load_settings
from mailpulse.store import accounts, migrate
from mailpulse.store.db import Database

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]
AccountArg = Annotated[str, typer.Argument(help="account id, client id or name")]


def fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr and the exit status (2: a wrong command line or argument)."""
    print(f"mailpulse: {message}", file=sys.stderr)
    sys.exit(status)


def database(settings: Settings) -> Database:
    return Database(settings.database_url, synchronous=settings.sqlite_synchronous)


def migrated(settings: Settings) -> Database:
    """The database, reachable and at the newest schema; the data directory made private."""
    try:
        files.private_dir(settings.data_dir)
    except OSError as exc:
        raise ConfigError(f"data_dir {settings.data_dir}: {exc.strerror}") from None
    db = database(settings)
    db.check()
    migrate.upgrade(db.engine)
    return db


def account_or_fail(db: Database, ref: str) -> accounts.Account:
    found = db.read_sync(lambda conn: accounts.find_account(conn, ref))
    if found is None:
        db.close_sync()
        fail(f"no account {ref!r}")
    return found


def show(data: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str))
    elif isinstance(data, dict):
        for key, value in data.items():
            typer.echo(f"{key}: {value}")
    else:
        for item in data:
            typer.echo("  ".join(f"{k}={v}" for k, v in item.items()))


def show_for_account(
    ref: str, rows: Callable[[Connection, int], list[dict[str, object]]], as_json: bool
) -> None:
    """Print what ``rows`` reads for the account ``ref`` names (its senders, its keys …)."""
    db = migrated(load_settings())
    found = account_or_fail(db, ref)
    show(db.read_sync(lambda conn: rows(conn, found.id)), as_json)
    db.close_sync()


def within(settings: Settings) -> str:
    """How soon running servers follow a change of credentials or access."""
    return f" (running servers follow within {settings.auth_cache_seconds:g} s)"
