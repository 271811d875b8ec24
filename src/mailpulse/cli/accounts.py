"""``mailpulse account …``: tenants, their credentials, and cutting off their access."""

from __future__ import annotations

from typing import Annotated

import typer

from mailpulse.cli.common import AccountArg, JsonFlag, account_or_fail, fail, migrated, show, within
from mailpulse.config import load_settings
from mailpulse.core.access import ACTIVE, DISABLED
from mailpulse.core.auth import hash_secret, new_client_id, new_client_secret
from mailpulse.core.clock import SystemClock
from mailpulse.core.validate import normalise_address
from mailpulse.store import accounts
from mailpulse.store.db import Database

account_app = typer.Typer(
    help="Accounts (tenants) and their API credentials.", no_args_is_help=True
)


def create_account(
    db: Database, name: str, email: str, activate: bool
) -> dict[str, str | int | bool]:
    """Create an account; ``accounts.NameTaken`` when the name is taken."""
    client_id, secret = new_client_id(), new_client_secret()
    secret_hash = hash_secret(secret)
    now = SystemClock().now()
    account_id = db.write_sync(
        lambda conn: accounts.create_account(
            conn,
            name=name,
            email=email,
            client_id=client_id,
            secret_hash=secret_hash,
            activated=activate,
            now=now,
        )
    )
    return {
        "id": account_id,
        "name": name,
        "client_id": client_id,
        "client_secret": secret,
        "smtp_activated": activate,
    }


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or not name.isprintable():
        fail(f"not an account name: {name!r} (1 to 200 printable characters)")
    if name.isdigit():
        fail(f"not an account name: {name!r} (all digits would read as an account id)")
    return name


def _checked_email(email: str) -> str:
    if not email:
        return ""
    address = normalise_address(email)
    if address is None:
        fail(f"not an email address: {email!r}")
    return address


@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Option(help="account name (unique)")],
    email: Annotated[str, typer.Option(help="owner's email")] = "",
    activate: Annotated[bool, typer.Option(help="activate SMTP sending now")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Create an account and print its client id and secret (the secret is shown only once)."""
    name, email = _checked_name(name), _checked_email(email)
    db = migrated(load_settings())
    try:
        created = create_account(db, name, email, activate)
    except accounts.NameTaken as taken:
        fail(f"{taken}: choose another name")
    finally:
        db.close_sync()
    show(created, as_json)


@account_app.command("list")
def account_list(as_json: JsonFlag = False) -> None:
    """List accounts (secrets are stored hashed and never shown again)."""
    db = migrated(load_settings())
    rows = [
        {
            "id": a.id,
            "name": a.name,
            "client_id": a.client_id,
            "status": a.status,
            "smtp_activated": a.smtp_activated,
        }
        for a in db.read_sync(accounts.list_accounts)
    ]
    show(rows, as_json)
    db.close_sync()


@account_app.command("activate")
def account_activate(
    account: AccountArg,
    off: Annotated[bool, typer.Option("--off", help="deactivate instead")] = False,
) -> None:
    """Turn SMTP sending on (or off, with --off) for an account; API access stays as it is."""
    settings = load_settings()
    db = migrated(settings)
    found = account_or_fail(db, account)
    db.write_sync(lambda conn: accounts.set_activated(conn, found.id, not off))
    typer.echo(f"account {found.id} smtp_activated={not off}{within(settings)}")
    db.close_sync()


def _set_status(account: str, status: str, what: str) -> None:
    settings = load_settings()
    db = migrated(settings)
    found = account_or_fail(db, account)
    db.write_sync(lambda conn: accounts.set_status(conn, found.id, status))
    typer.echo(f"account {found.id} ({found.name}) {what}{within(settings)}")
    db.close_sync()


@account_app.command("disable")
def account_disable(account: AccountArg) -> None:
    """Cut off all API access: its tokens, static keys and token requests are refused."""
    _set_status(account, DISABLED, "disabled: tokens, keys and token requests are refused")


@account_app.command("enable")
def account_enable(account: AccountArg) -> None:
    """Let a disabled account use the API again (its unrevoked tokens and keys work again)."""
    _set_status(account, ACTIVE, "enabled")


@account_app.command("rotate-secret")
def account_rotate_secret(account: AccountArg, as_json: JsonFlag = False) -> None:
    """Replace the client secret (printed once); the old one and its tokens stop working."""
    settings = load_settings()
    db = migrated(settings)
    found = account_or_fail(db, account)
    secret = new_client_secret()
    secret_hash = hash_secret(secret)
    db.write_sync(lambda conn: accounts.rotate_secret(conn, found.id, secret_hash))
    db.close_sync()
    data = {"id": found.id, "name": found.name, "client_id": found.client_id}
    show(data | {"client_secret": secret}, as_json)
    if not as_json:
        typer.echo(f"the old secret is refused now; its tokens are refused{within(settings)}")


@account_app.command("revoke-tokens")
def account_revoke_tokens(account: AccountArg) -> None:
    """Revoke every access token issued to the account so far (new ones can be requested)."""
    settings = load_settings()
    db = migrated(settings)
    found = account_or_fail(db, account)
    db.write_sync(lambda conn: accounts.revoke_tokens(conn, found.id))
    typer.echo(f"account {found.id} ({found.name}): every earlier token revoked{within(settings)}")
    db.close_sync()
