"""Helpers for the delivery tests: test settings, a message, seeding and reading rows."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailpulse.config import Settings
from mailpulse.core import status
from mailpulse.core.signing import Signer
from mailpulse.delivery import verp
from mailpulse.store.db import Database
from mailpulse.store.tables import accounts, deliveries, delivery_queue, messages
from tests.support.dnsserver import DnsServer

T0 = datetime(2030, 1, 1, 12, 0, 0)

RAW = (
    b"From: Sender <sender@mailpulse.test>\r\n"
    b"To: someone@example.test\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <m1@mailpulse.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Hello \xc3\xa9t\xc3\xa9.\r\n"
    b".a line starting with a dot\r\n"
    b"..two dots\r\n"
    b"trailing spaces   \r\n"
    b"\r\n"
    b"-- \r\n"
    b"bye\r\n"
)


TEST_SECRET = "test-secret-key-0123456789abcdef0123456789"
BOUNCE_DOMAIN = "bounces.mailpulse.test"


def return_path(db: Database, recipient: str) -> str:
    """The VERP envelope sender the worker gives the delivery to ``recipient``."""
    return verp.return_path(Signer(TEST_SECRET), BOUNCE_DOMAIN, delivery(db, recipient).public_id)


def make_settings(dns: DnsServer, mx_port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "dns_nameservers": ["127.0.0.1"],
        "dns_port": dns.port,
        "mx_port": mx_port,
        "ehlo_name": "out.mailpulse.test",
        "connect_timeout": 2.0,
        "command_timeout": 2.0,
        "claim_batch": 50,
        # every test MX is on loopback (127.0.0.x): allowed here, refused by default
        "allow_private_mx": True,
        # VERP return paths are signed with it (else one would be generated under ./var)
        "secret_key": TEST_SECRET,
        "bounce_domain": BOUNCE_DOMAIN,
        # The engine's own tests send the stored bytes as they are, several recipients to a
        # transaction; the List-Unsubscribe step is tested in tests/e2e/test_suppression.py.
        "list_unsubscribe": False,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Seeded:
    account_id: int
    message_id: int
    delivery_ids: list[int]


def seed(
    db: Database,
    recipients: Sequence[str],
    *,
    raw: bytes = RAW,
    envelope_from: str = "bounces@mailpulse.test",
    created_at: datetime = T0,
    account_id: int | None = None,
) -> Seeded:
    """An account (unless given), one message and one queued delivery per recipient."""

    def job(conn: sa.Connection) -> Seeded:
        acct = account_id
        if acct is None:
            acct = conn.execute(
                sa.insert(accounts)
                .values(
                    name=f"test-{secrets.token_hex(4)}",  # names are unique
                    client_id=secrets.token_hex(8),
                    client_secret_hash="x",
                    created_at=created_at,
                )
                .returning(accounts.c.id)
            ).scalar_one()
        message_id = conn.execute(
            sa.insert(messages)
            .values(
                account_id=acct,
                envelope_from=envelope_from,
                sender=envelope_from,
                total_size=len(raw),
                raw=raw,
                created_at=created_at,
            )
            .returning(messages.c.id)
        ).scalar_one()
        ids = []
        for recipient in recipients:
            ids.append(
                conn.execute(
                    sa.insert(deliveries)
                    .values(
                        public_id=secrets.token_hex(7),
                        account_id=acct,
                        message_id=message_id,
                        recipient=recipient,
                        recipient_domain=recipient.rsplit("@", 1)[1].lower(),
                        sender=envelope_from,
                        status=status.QUEUED,
                        created_at=created_at,
                        updated_at=created_at,
                    )
                    .returning(deliveries.c.id)
                ).scalar_one()
            )
        return Seeded(acct, message_id, ids)

    return db.write_sync(job)


QUEUE_COLUMNS = ("next_attempt_at", "lease_until", "lease_owner")


def rows(db: Database, table: sa.Table = deliveries, **where: Any) -> list[sa.Row[Any]]:
    """Rows of ``table``; deliveries come with their queue columns (None once out of it)."""

    def job(conn: sa.Connection) -> list[sa.Row[Any]]:
        if table is deliveries:
            q = delivery_queue
            query = sa.select(table, *(q.c[name] for name in QUEUE_COLUMNS)).select_from(
                table.outerjoin(q, q.c.delivery_id == table.c.id)
            )
        else:
            query = sa.select(table)
        for key, value in where.items():
            query = query.where(table.c[key] == value)
        return list(conn.execute(query.order_by(table.c.id)).all())

    return db.read_sync(job)


def set_row(db: Database, recipient: str, **values: Any) -> None:
    """Change a delivery: queue columns on its queue row; a final status takes it out."""

    def job(conn: sa.Connection) -> None:
        (delivery_id,) = conn.execute(
            sa.select(deliveries.c.id).where(deliveries.c.recipient == recipient)
        ).one()
        queued = {k: values.pop(k) for k in QUEUE_COLUMNS if k in values}
        if values:
            conn.execute(
                sa.update(deliveries).where(deliveries.c.id == delivery_id).values(**values)
            )
        if queued:
            conn.execute(
                sa.update(delivery_queue)
                .where(delivery_queue.c.delivery_id == delivery_id)
                .values(**queued)
            )
        if values.get("status") in ("delivered", "bounced"):
            conn.execute(
                sa.delete(delivery_queue).where(delivery_queue.c.delivery_id == delivery_id)
            )

    db.write_sync(job)


def delivery(db: Database, recipient: str) -> sa.Row[Any]:
    (row,) = rows(db, recipient=recipient)
    return row
