"""The bounce list (table ``bounces``): every bounce, synchronous or from a report.

:func:`record` is the one way a bounce is written — by the delivery recorder for a 5xx reply
or an expiry, by the bounce receiver for a DSN — so both sources list the same way and
suppress by the same rule: the caller says whether this bounce condemns the address (the
classifier's ``Classification.hard``, delivery/classify.py), and if so the address goes on the
account's suppression list in the same transaction. :func:`record_all` is the same for a
batch (the delivery recorder's: one insert and one suppression upsert per batch).

:func:`list_between` and :func:`count_between` read an account's list for a time range
(GET /smtp/bounces/day): one range of ``ix_bounces_account_created``, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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


def _row(bounce: NewBounce, now: datetime) -> dict[str, object]:
    return {
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
    }


def record(conn: Connection, bounce: NewBounce, now: datetime) -> None:
    """List the bounce, and suppress its address when it condemns it (same transaction)."""
    record_all(conn, [bounce], now)


def record_all(conn: Connection, batch: Sequence[NewBounce], now: datetime) -> None:
    """:func:`record` for many bounces: one insert, and one suppression write per account."""
    if not batch:
        return
    conn.execute(bounces.insert(), [_row(bounce, now) for bounce in batch])
    condemned: dict[int, dict[str, Suppress]] = {}
    for bounce in batch:
        if bounce.suppress:
            entries = condemned.setdefault(bounce.account_id, {})
            # one entry per address: a statement may not upsert the same row twice
            entries.setdefault(
                bounce.email_to.lower(),
                Suppress(bounce.email_to, bounced=True, bounce_category=bounce.category),
            )
    for account_id, by_email in condemned.items():
        suppression.add(conn, account_id, list(by_email.values()), now)


# -- the list -----------------------------------------------------------------------------------
_LISTED = (
    bounces.c.email_to,
    bounces.c.sender,
    bounces.c.send_date,
    bounces.c.subject,
    bounces.c.smtp_answer_code,
    bounces.c.smtp_answer_subcode,
    bounces.c.smtp_answer_data,
    bounces.c.created_at,
)


def _between(account_id: int, since: datetime, until: datetime) -> list[sa.ColumnElement[bool]]:
    return [
        bounces.c.account_id == account_id,
        bounces.c.created_at >= since,
        bounces.c.created_at < until,
    ]


def list_between(
    conn: Connection, account_id: int, since: datetime, until: datetime, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The account's bounces listed at or after ``since`` and before ``until``, newest first."""
    query = (
        sa.select(*_LISTED)
        .where(*_between(account_id, since, until))
        .order_by(bounces.c.created_at.desc(), bounces.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    result = conn.execute(query)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


def count_between(conn: Connection, account_id: int, since: datetime, until: datetime) -> int:
    """How many bounces :func:`list_between` would list over all pages."""
    query = (
        sa.select(sa.func.count()).select_from(bounces).where(*_between(account_id, since, until))
    )
    return int(conn.execute(query).scalar_one())
