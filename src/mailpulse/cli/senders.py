"""``mailpulse sender …``: the addresses an account may send from."""

from __future__ import annotations

from typing import Annotated

import typer

from mailpulse.cli.common import (
    AccountArg,
    JsonFlag,
    account_or_fail,
    migrated,
    show_for_account,
)
from mailpulse.config import load_settings
from mailpulse.core.clock import SystemClock
from mailpulse.core.validate import normalise_address
from mailpulse.store import accounts

sender_app = typer.Typer(help="Sender addresses an account may send from.", no_args_is_help=True)


@sender_app.command("add")
def sender_add(
    account: AccountArg,
    email: Annotated[str, typer.Argument(help="sender address")],
    name: Annotated[str, typer.Option(help="sender name")] = "",
) -> None:
    """Allow an account to send from an address."""
    address = normalise_address(email)
    if address is None:
        typer.echo(f"not an email address: {email!r}", err=True)
        raise typer.Exit(2)
    db = migrated(load_settings())
    found = account_or_fail(db, account)
    now = SystemClock().now()
    db.write_sync(
        lambda conn: accounts.add_sender(
            conn, account_id=found.id, email=address, name=name, now=now, status="active"
        )
    )
    typer.echo(f"sender {address} allowed for account {found.id}")
    db.close_sync()


@sender_app.command("list")
def sender_list(
    account: AccountArg,
    as_json: JsonFlag = False,
) -> None:
    """List an account's senders."""
    show_for_account(account, accounts.list_senders, as_json)
