"""``mailpulse demo``: the first-run account ``make run`` prints, created once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from mailpulse import files
from mailpulse.cli.accounts import create_account
from mailpulse.cli.common import account_or_fail, migrated
from mailpulse.config import load_settings
from mailpulse.core.auth import hash_secret, new_client_secret
from mailpulse.core.clock import SystemClock
from mailpulse.store import accounts
from mailpulse.store.db import Database

DEMO_SENDER = "demo@example.com"


def demo() -> None:
    """Create a demo account once, and print how to send a first email with it."""
    settings = load_settings()
    db = migrated(settings)
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
        demo = account_or_fail(db, "demo")
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
