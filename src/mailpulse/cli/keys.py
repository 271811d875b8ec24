"""``mailpulse key …``: static API keys, used as bearer tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from mailpulse.cli.common import (
    AccountArg,
    JsonFlag,
    account_or_fail,
    fail,
    migrated,
    show,
    show_for_account,
    within,
)
from mailpulse.config import load_settings
from mailpulse.core.auth import hash_api_key, new_api_key
from mailpulse.core.clock import SystemClock
from mailpulse.store import accounts

key_app = typer.Typer(help="Static API keys, used as bearer tokens.", no_args_is_help=True)


@key_app.command("create")
def key_create(
    account: AccountArg,
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a static API key (use it as `Authorization: Bearer <key>`; shown only once)."""
    db = migrated(load_settings())
    found = account_or_fail(db, account)
    key = new_api_key()
    now = SystemClock().now()
    key_id = db.write_sync(
        lambda conn: accounts.create_api_key(
            conn,
            account_id=found.id,
            name=name,
            key_hash=hash_api_key(key),
            hint=key[:8],
            now=now,
        )
    )
    show({"id": key_id, "account_id": found.id, "key": key}, as_json)
    db.close_sync()


@key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Argument(help="the key's id")]) -> None:
    """Revoke a static API key (running servers refuse it within the auth cache window)."""
    settings = load_settings()
    db = migrated(settings)
    now = SystemClock().now()
    revoked = db.write_sync(lambda conn: accounts.revoke_api_key(conn, key_id, now))
    db.close_sync()
    if not revoked:
        fail(f"no active key {key_id}")
    typer.echo(f"key {key_id} revoked{within(settings)}")


@key_app.command("list")
def key_list(
    account: AccountArg,
    as_json: JsonFlag = False,
) -> None:
    """List an account's keys (their hints only)."""
    show_for_account(account, accounts.list_api_keys, as_json)
