"""The bounce list (table ``bounces``): every bounce, synchronous or from a report.

:func:`record` is the one way a bounce is written — by the delivery recorder for a 5xx reply
or an expiry, by the bounce receiver for a DSN — so both sources list the same way and
suppress by the same rule: the caller says whether this bounce condemns the address (the
classifier's ``Classification.hard``, delivery/classify.py), and if so the address goes on the
account's suppression list in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from mailpulse.store import suppression
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import bounces


@dataclass(frozen=True, slots=True)
class NewBounce:
    account_id: int
    delivery_id: int | None
    email_to: str
    sender: str
    subject: str
    send_date: datetime | None
    code: int | None
    subcode: str
    data: str
    category: str
    source: str  # "sync" or "dsn"
    suppress: bool  # put the address on the suppression list


def _text(value: str) -> str:
    """No NUL is ever stored (store/text.py): a report may carry one; it is dropped."""
    return value.replace("\x00", "")


def record(conn: Connection, bounce: NewBounce, now: datetime) -> None:
    """List the bounce, and suppress its address when it condemns it (same transaction)."""
    conn.execute(
        bounces.insert(),
        {
            "account_id": bounce.account_id,
            "delivery_id": bounce.delivery_id,
            "email_to": bounce.email_to.lower(),
            "sender": bounce.sender,
            "subject": _text(bounce.subject),
            "send_date": bounce.send_date,
            "smtp_answer_code": bounce.code,
            "smtp_answer_subcode": bounce.subcode[:16],
            "smtp_answer_data": _text(bounce.data),
            "category": bounce.category[:32],
            "source": bounce.source,
            "suppressed": bounce.suppress,
            "created_at": now,
        },
    )
    if bounce.suppress:
        entry = Suppress(bounce.email_to, bounced=True, bounce_category=bounce.category)
        suppression.add(conn, bounce.account_id, [entry], now)
