"""What a report does to the store, in one transaction, with one log line per decision.

    Bounce       the delivery becomes ``bounced`` (also when it was delivered: the receiving
                 side accepted it and failed later), with the report's reply code, enhanced
                 status, text and bounce category; it leaves the queue if it was still in it;
                 the bounce is listed (store/bounces.record, source "dsn") and the address
                 suppressed when the classifier says the failure condemns it; a
                 ``hard_bounce``/``soft_bounce`` event is added. A delivery already bounced
                 (or never sent: suppressed) is left as it is: the report is a duplicate.
    Complaint    the delivery's recipient is put on its account's list with spam_complaint=1
                 (which unsubscribes it); a ``spam_complaint`` event is added.
    Unsubscribe  the address the token names is put on the token's account's list with
                 unsubscribe_by_link=1; an ``unsubscribe`` event is added.

The delivery and the account always come from the token; the address unsubscribed or
suppressed is the delivery's recipient (or the one the unsubscribe token names), never one
the report's body quotes. Run :func:`apply` through ``Database.write``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from mailpulse.core import status
from mailpulse.inbound.report import Action, Bounce, Complaint, Ignore, Unsubscribe
from mailpulse.store import bounces, suppression
from mailpulse.store.bounces import NewBounce
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import deliveries, delivery_queue, events, messages


def _delivery(conn: Connection, public_id: str) -> Any:
    d = deliveries
    query = (
        select(
            d.c.id,
            d.c.account_id,
            d.c.recipient,
            d.c.recipient_domain,
            d.c.sender,
            d.c.status,
            d.c.send_date,
            messages.c.subject,
        )
        .join(messages, messages.c.id == d.c.message_id)
        .where(d.c.public_id == public_id)
    )
    return conn.execute(query).first()


def _event(
    conn: Connection, account_id: int, delivery_id: int | None, kind: str, data: dict[str, Any]
) -> None:
    conn.execute(
        insert(events).values(
            account_id=account_id,
            delivery_id=delivery_id,
            type=kind,
            created_at=data.pop("_now"),
            data=json.dumps(data, separators=(",", ":")),
        )
    )


def _bounce(conn: Connection, action: Bounce, now: datetime) -> str:
    row = _delivery(conn, action.public_id)
    if row is None:
        return f"bounce report for delivery {action.public_id}, which does not exist: dropped"
    where = f"delivery {action.public_id} to {row.recipient_domain}"
    if row.status in (status.BOUNCED, status.SUPPRESSED):
        return f"{where}: bounce report for a delivery already {row.status}, dropped"
    report = action.status
    classification = action.classification
    category = classification.category or "other"
    hard = classification.hard
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == row.id)
        .values(
            status=status.BOUNCED,
            updated_at=now,
            send_date=row.send_date or now,
            smtp_answer_code=action.code,
            smtp_answer_subcode=report.status[:16],
            smtp_answer_data=report.text,
            bounce_category=category,
        )
    )
    conn.execute(delete(delivery_queue).where(delivery_queue.c.delivery_id == row.id))
    bounces.record(
        conn,
        NewBounce(
            account_id=row.account_id,
            delivery_id=row.id,
            email_to=row.recipient,
            sender=row.sender,
            subject=row.subject,
            send_date=row.send_date or now,
            code=action.code,
            subcode=report.status,
            data=report.text,
            category=category,
            source="dsn",
            suppress=hard,
        ),
        now,
    )
    _event(
        conn,
        row.account_id,
        row.id,
        "hard_bounce" if hard else "soft_bounce",
        {
            "_now": now,
            "email_id": action.public_id,
            "recipient": row.recipient,
            "smtp_answer_code": action.code,
            "smtp_answer_subcode": report.status,
            "smtp_answer_data": report.text,
            "bounce_category": category,
            "source": "dsn",
        },
    )
    verdict = "address suppressed" if hard else "address not suppressed"
    shown = f"{action.code} {report.status}".strip()
    return f"{where}: bounce report {shown} ({category}), bounced, {verdict}"


def _suppress_recipient(
    conn: Connection,
    public_id: str,
    entry: Suppress,
    event: str,
    data: dict[str, Any],
    now: datetime,
) -> Any:
    """Put the recipient of delivery ``public_id`` on its account's list (``entry``'s flags and
    comment) and add ``event``; the delivery's row, or None when there is no such delivery."""
    row = _delivery(conn, public_id)
    if row is None:
        return None
    suppression.add(conn, row.account_id, [replace(entry, email=row.recipient)], now)
    details = {"_now": now, "email_id": public_id, "recipient": row.recipient, **data}
    _event(conn, row.account_id, row.id, event, details)
    return row


def _complaint(conn: Connection, action: Complaint, now: datetime) -> str:
    entry = Suppress("", spam_complaint=True, comment="spam complaint (feedback loop)")
    feedback = {"feedback_type": action.feedback_type}
    row = _suppress_recipient(conn, action.public_id, entry, "spam_complaint", feedback, now)
    if row is None:
        return f"complaint about delivery {action.public_id}, which does not exist: dropped"
    return (
        f"delivery {action.public_id} to {row.recipient_domain}: spam complaint "
        f"({action.feedback_type}), address unsubscribed"
    )


def _unsubscribe(conn: Connection, action: Unsubscribe, now: datetime) -> str:
    entry = Suppress("", unsubscribe_by_link=True, comment="unsubscribed by mail")
    row = _suppress_recipient(conn, action.public_id, entry, "unsubscribe", {"by": "mail"}, now)
    if row is None:
        return f"unsubscribe by mail for delivery {action.public_id}, which does not exist: dropped"
    return (
        f"account {row.account_id}: unsubscribe by mail (delivery {action.public_id}) "
        f"for an address at {row.recipient_domain}, address unsubscribed"
    )


def apply(conn: Connection, actions: Sequence[Action], now: datetime) -> list[str]:
    """Write what the actions say; the log line of each decision, in order."""
    lines: list[str] = []
    for action in actions:
        if isinstance(action, Bounce):
            lines.append(_bounce(conn, action, now))
        elif isinstance(action, Complaint):
            lines.append(_complaint(conn, action, now))
        elif isinstance(action, Unsubscribe):
            lines.append(_unsubscribe(conn, action, now))
        elif isinstance(action, Ignore):
            lines.append(action.why)
    return lines
