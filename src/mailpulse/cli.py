"""The ``mailpulse`` command line: serve, migrate, accounts, senders and API keys.

:func:`main` is the one entry point (``mailpulse`` and ``python -m mailpulse``): whatever the
command, an operator's mistake (a wrong setting, a database that cannot be reached, a server
that cannot start) ends as one line on stderr and a non-zero exit status, never a traceback.
Exit statuses (see failures.py): 78 a setting is wrong (restarting will not help), 69 the
database is unavailable, 3 a server process failed to start, 70 a part of a running process
(its delivery worker, its database writer) ended unexpectedly, 1 anything unexpected, 2 a
wrong command line (click's own), 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from mailpulse import files
from mailpulse.config import ConfigError, Settings, load_settings
from mailpulse.core.access import ACTIVE, DISABLED
from mailpulse.core.auth import (
    hash_api_key,
    hash_secret,
    new_api_key,
    new_client_id,
    new_client_secret,
)
from mailpulse.core.clock import SystemClock
from mailpulse.core.validate import normalise_address
from mailpulse.failures import OperatorError
from mailpulse.store import accounts, migrate
from mailpulse.store.db import Database

app = typer.Typer(help="mailpulse: the SendPulse SMTP API, self-hosted.", no_args_is_help=True)
account_app = typer.Typer(
    help="Accounts (tenants) and their API credentials.", no_args_is_help=True
)
sender_app = typer.Typer(help="Sender addresses an account may send from.", no_args_is_help=True)
key_app = typer.Typer(help="Static API keys, used as bearer tokens.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(sender_app, name="sender")
app.add_typer(key_app, name="key")

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


def main() -> None:
    """Run the command line; turn every operator's mistake into one line and an exit status."""
    try:
        app()
    except OperatorError as exc:
        prefix = "configuration error: " if isinstance(exc, ConfigError) else ""
        _fail(f"{prefix}{exc}", exc.exit_status)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        debug = os.environ.get("MAILPULSE_LOG_LEVEL", "").lower() in ("debug", "trace")
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (MAILPULSE_LOG_LEVEL=debug shows the traceback)"
        first = (str(exc).strip().splitlines() or [""])[0]
        _fail(f"unexpected error: {type(exc).__name__}: {first}{hint}", 1)


def _fail(message: str, status: int = 2) -> NoReturn:
    """One line on stderr and the exit status (2: a wrong command line or argument)."""
    print(f"mailpulse: {message}", file=sys.stderr)
    sys.exit(status)


def _database(settings: Settings) -> Database:
    return Database(settings.database_url, synchronous=settings.sqlite_synchronous)


def _migrated(settings: Settings) -> Database:
    """The database, reachable and at the newest schema; the data directory made private."""
    try:
        files.private_dir(settings.data_dir)
    except OSError as exc:
        raise ConfigError(f"data_dir {settings.data_dir}: {exc.strerror}") from None
    db = _database(settings)
    db.check()
    migrate.upgrade(db.engine)
    return db


def _account(db: Database, ref: str) -> accounts.Account:
    found = db.read_sync(lambda conn: accounts.find_account(conn, ref))
    if found is None:
        db.close_sync()
        _fail(f"no account {ref!r}")
    return found


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str))
    elif isinstance(data, dict):
        for key, value in data.items():
            typer.echo(f"{key}: {value}")
    else:
        for item in data:
            typer.echo("  ".join(f"{k}={v}" for k, v in item.items()))


@app.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema."""
    settings = load_settings()
    db = _migrated(settings)
    typer.echo(f"database at revision {migrate.current_revision(db.engine)}")
    db.close_sync()


HostOption = Annotated[str | None, typer.Option(help="listen address")]
PortOption = Annotated[int | None, typer.Option(help="listen port")]


@app.command()
def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run everything in one process: the HTTP API and a delivery worker."""
    _serve_http(host, port, deliver=True)


@app.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Run the HTTP API alone (pair it with `mailpulse worker` processes on PostgreSQL)."""
    _serve_http(host, port, deliver=False)


@app.command()
def worker() -> None:
    """Run a delivery worker alone; run any number of them against PostgreSQL."""
    import asyncio
    import signal

    from mailpulse.runtime import Fatal, build_runtime, running_worker, watched
    from mailpulse.serving import StoppedOnFailure, announce, configure_logging

    settings = load_settings()
    configure_logging(settings)
    _migrated(settings).close_sync()
    runtime = build_runtime(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        announce(settings, http=False, deliver=True)
        runtime.db.start()
        try:
            async with running_worker(runtime), watched(runtime):
                await stop.wait()
        finally:
            await runtime.db.close()

    asyncio.run(main())
    if Fatal.reason is not None:
        raise StoppedOnFailure(f"stopped: {Fatal.reason}")


def _serve_http(host: str | None, port: int | None, *, deliver: bool) -> None:
    from mailpulse.api.server import uvicorn_options
    from mailpulse.serving import announce, configure_logging, run_http

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["http_host"] = host
    if port is not None:
        overrides["http_port"] = port
    settings = load_settings(**overrides)
    configure_logging(settings)
    _migrated(settings).close_sync()
    settings.resolved_secret_key()  # generated here once, before the processes start
    options: dict[str, Any] = {
        "host": settings.http_host,
        "port": settings.http_port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "loop": "uvloop",
        # httptools with a header timeout and size limit, keep-alive timeout, connection cap
        **uvicorn_options(settings),
        # SIGTERM stops the server within seconds even with requests waiting on the store
        "timeout_graceful_shutdown": 5,
    }
    announce(settings, http=True, deliver=deliver)
    run_http(settings, options, deliver=deliver)


# -- accounts -----------------------------------------------------------------------------------
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
        _fail(f"not an account name: {name!r} (1 to 200 printable characters)")
    if name.isdigit():
        _fail(f"not an account name: {name!r} (all digits would read as an account id)")
    return name


def _checked_email(email: str) -> str:
    if not email:
        return ""
    address = normalise_address(email)
    if address is None:
        _fail(f"not an email address: {email!r}")
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
    db = _migrated(load_settings())
    try:
        created = create_account(db, name, email, activate)
    except accounts.NameTaken as taken:
        _fail(f"{taken}: choose another name")
    finally:
        db.close_sync()
    _print(created, as_json)


@account_app.command("list")
def account_list(as_json: JsonFlag = False) -> None:
    """List accounts (secrets are stored hashed and never shown again)."""
    db = _migrated(load_settings())
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
    _print(rows, as_json)
    db.close_sync()


@account_app.command("activate")
def account_activate(
    account: Annotated[str, typer.Argument(help="account id, client id or name")],
    off: Annotated[bool, typer.Option("--off", help="deactivate instead")] = False,
) -> None:
    """Turn SMTP sending on (or off, with --off) for an account; API access stays as it is."""
    settings = load_settings()
    db = _migrated(settings)
    found = _account(db, account)
    db.write_sync(lambda conn: accounts.set_activated(conn, found.id, not off))
    typer.echo(f"account {found.id} smtp_activated={not off}{_within(settings)}")
    db.close_sync()


def _within(settings: Settings) -> str:
    return f" (running servers follow within {settings.auth_cache_seconds:g} s)"


def _set_status(account: str, status: str, what: str) -> None:
    settings = load_settings()
    db = _migrated(settings)
    found = _account(db, account)
    db.write_sync(lambda conn: accounts.set_status(conn, found.id, status))
    typer.echo(f"account {found.id} ({found.name}) {what}{_within(settings)}")
    db.close_sync()


AccountArg = Annotated[str, typer.Argument(help="account id, client id or name")]


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
    db = _migrated(settings)
    found = _account(db, account)
    secret = new_client_secret()
    secret_hash = hash_secret(secret)
    db.write_sync(lambda conn: accounts.rotate_secret(conn, found.id, secret_hash))
    db.close_sync()
    data = {"id": found.id, "name": found.name, "client_id": found.client_id}
    _print(data | {"client_secret": secret}, as_json)
    if not as_json:
        typer.echo(f"the old secret is refused now; its tokens are refused{_within(settings)}")


@account_app.command("revoke-tokens")
def account_revoke_tokens(account: AccountArg) -> None:
    """Revoke every access token issued to the account so far (new ones can be requested)."""
    settings = load_settings()
    db = _migrated(settings)
    found = _account(db, account)
    db.write_sync(lambda conn: accounts.revoke_tokens(conn, found.id))
    typer.echo(f"account {found.id} ({found.name}): every earlier token revoked{_within(settings)}")
    db.close_sync()


# -- senders ------------------------------------------------------------------------------------
@sender_app.command("add")
def sender_add(
    account: Annotated[str, typer.Argument(help="account id, client id or name")],
    email: Annotated[str, typer.Argument(help="sender address")],
    name: Annotated[str, typer.Option(help="sender name")] = "",
) -> None:
    """Allow an account to send from an address."""
    address = normalise_address(email)
    if address is None:
        typer.echo(f"not an email address: {email!r}", err=True)
        raise typer.Exit(2)
    db = _migrated(load_settings())
    found = _account(db, account)
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
    account: Annotated[str, typer.Argument(help="account id, client id or name")],
    as_json: JsonFlag = False,
) -> None:
    """List an account's senders."""
    db = _migrated(load_settings())
    found = _account(db, account)
    _print(db.read_sync(lambda conn: accounts.list_senders(conn, found.id)), as_json)
    db.close_sync()


# -- API keys -----------------------------------------------------------------------------------
@key_app.command("create")
def key_create(
    account: Annotated[str, typer.Argument(help="account id, client id or name")],
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a static API key (use it as `Authorization: Bearer <key>`; shown only once)."""
    db = _migrated(load_settings())
    found = _account(db, account)
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
    _print({"id": key_id, "account_id": found.id, "key": key}, as_json)
    db.close_sync()


@key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Argument(help="the key's id")]) -> None:
    """Revoke a static API key (running servers refuse it within the auth cache window)."""
    settings = load_settings()
    db = _migrated(settings)
    now = SystemClock().now()
    revoked = db.write_sync(lambda conn: accounts.revoke_api_key(conn, key_id, now))
    db.close_sync()
    if not revoked:
        _fail(f"no active key {key_id}")
    typer.echo(f"key {key_id} revoked{_within(settings)}")


@key_app.command("list")
def key_list(
    account: Annotated[str, typer.Argument(help="account id, client id or name")],
    as_json: JsonFlag = False,
) -> None:
    """List an account's keys (their hints only)."""
    db = _migrated(load_settings())
    found = _account(db, account)
    _print(db.read_sync(lambda conn: accounts.list_api_keys(conn, found.id)), as_json)
    db.close_sync()


# -- the first-run demo ---------------------------------------------------------------------------
DEMO_SENDER = "demo@example.com"


@app.command()
def demo() -> None:
    """Create a demo account once, and print how to send a first email with it."""
    settings = load_settings()
    db = _migrated(settings)
    path = settings.data_dir / "demo-credentials.json"
    creds = _demo_credentials(db, path)
    db.close_sync()
    base = settings.base_url()
    token_body = json.dumps(
        {
            "grant_type": "client_credentials",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
        }
    )
    email_body = json.dumps(
        {
            "email": {
                "subject": "Hello from mailpulse",
                "html": "PGgxPkhlbGxvIGZyb20gbWFpbHB1bHNlPC9oMT4=",
                "text": "Hello from mailpulse",
                "from": {"name": "Demo", "email": DEMO_SENDER},
                "to": [{"name": "You", "email": "you@example.org"}],
            }
        }
    )
    typer.echo(
        f"""
mailpulse demo account (kept in {path}):
  client_id:     {creds["client_id"]}
  client_secret: {creds["client_secret"]}
  sender:        {DEMO_SENDER}

Send a first email, once the server below is listening on {base}:

  TOKEN=$(curl -s {base}/oauth/access_token -H 'Content-Type: application/json' \\
      -d '{token_body}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  curl -s {base}/smtp/emails -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{email_body}'
  curl -s {base}/smtp/emails -H "Authorization: Bearer $TOKEN"
"""
    )


def _demo_credentials(db: Database, path: Path) -> dict[str, Any]:
    if path.exists():
        stored: dict[str, Any] = json.loads(path.read_text())
        if db.read_sync(lambda conn: accounts.find_account(conn, str(stored["client_id"]))):
            return stored
    try:
        creds = create_account(db, "demo", DEMO_SENDER, True)
    except accounts.NameTaken:
        # The demo account exists but its credentials file is gone: give it a new secret.
        demo = _account(db, "demo")
        secret = new_client_secret()
        secret_hash = hash_secret(secret)
        db.write_sync(lambda conn: accounts.rotate_secret(conn, demo.id, secret_hash))
        creds = {"id": demo.id, "name": demo.name, "client_id": demo.client_id}
        creds |= {"client_secret": secret, "smtp_activated": demo.smtp_activated}
    account_id = int(creds["id"])
    now = SystemClock().now()
    db.write_sync(
        lambda conn: accounts.add_sender(
            conn, account_id=account_id, email=DEMO_SENDER, name="Demo", now=now, status="active"
        )
    )
    files.write_private(path, json.dumps(creds))
    return creds


if __name__ == "__main__":
    main()
