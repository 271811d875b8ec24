"""What the server stored for one accepted email, read straight from the database.

The compatibility tests check both sides: what the real SDK got back, and that the message the
server will deliver is the one the SDK meant to send (headers, parts, attachments, recipients).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.store.tables import deliveries, messages
from tests.support.server import RunningServer

EMAIL_ID = re.compile(r"^[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}$")
SEND_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

# A real (1x1, transparent) PNG: binary attachments must survive byte for byte.
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


@dataclass(frozen=True)
class StoredEmail:
    raw: bytes
    message: EmailMessage
    subject: str
    sender: str
    # recipient address -> kind ("to", "cc", "bcc"), one entry per deliveries row
    recipients: dict[str, str]
    # recipient address -> public id of its deliveries row
    ids: dict[str, str]

    def header_addresses(self, name: str) -> list[str]:
        return [addr.lower() for _, addr in getaddresses(self.message.get_all(name, []))]

    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return None if part is None else str(part.get_content())

    def text(self) -> str | None:
        part = self.message.get_body(preferencelist=("plain",))
        return None if part is None else str(part.get_content())

    def attachments(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for part in self.message.iter_attachments():
            name = part.get_filename()
            payload = part.get_payload(decode=True)
            assert isinstance(name, str), part
            assert isinstance(payload, bytes), part
            out[name] = payload
        return out


def stored_email(server: RunningServer, public_id: str) -> StoredEmail:
    """The message behind ``public_id`` (any of its recipients' ids) and all its deliveries."""

    def query(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        delivery = (
            conn.execute(sa.select(deliveries).where(deliveries.c.public_id == public_id))
            .mappings()
            .one()
        )
        message = (
            conn.execute(sa.select(messages).where(messages.c.id == delivery["message_id"]))
            .mappings()
            .one()
        )
        rows = (
            conn.execute(
                sa.select(deliveries.c.recipient, deliveries.c.kind, deliveries.c.public_id)
                .where(deliveries.c.message_id == message["id"])
                .order_by(deliveries.c.id)
            )
            .mappings()
            .all()
        )
        return dict(message), [dict(row) for row in rows]

    message, rows = server.runtime.db.read_sync(query)
    raw = bytes(message["raw"])
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return StoredEmail(
        raw=raw,
        message=parsed,
        subject=str(message["subject"]),
        sender=str(message["sender"]),
        recipients={row["recipient"]: row["kind"] for row in rows},
        ids={row["recipient"]: row["public_id"] for row in rows},
    )


def assert_log_record(record: dict[str, Any]) -> None:
    """The shape of one email-log record every SDK decodes (compat §a.2, §h.19)."""
    assert EMAIL_ID.match(record["id"]), record
    assert isinstance(record["total_size"], int) and record["total_size"] > 0, record
    assert SEND_DATE.match(record["send_date"]), record
    assert isinstance(record["smtp_answer_subcode"], str), record
    assert isinstance(record["smtp_answer_data"], str), record
    assert record["smtp_answer_code"] is None or isinstance(record["smtp_answer_code"], int)
    if record["status"] == "queued":
        assert record["smtp_answer_code"] is None, record
    tracking = record["tracking"]
    assert isinstance(tracking["click"], int) and isinstance(tracking["open"], int), record
    assert isinstance(tracking["link"], list) and isinstance(tracking["client_info"], list)
    for key in ("sender", "sender_ip", "used_ip", "recipient", "subject"):
        assert key in record, (key, record)
