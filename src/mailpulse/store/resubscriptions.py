"""Resubscriptions (table ``resubscriptions``): the confirmations sent and the links followed.

:class:`SqlResubscribeStore` is core.resubscribe's ResubscribeStore. Its two writes are one
transaction each: :func:`create` decides (core.resubscribe.refusal), records the
resubscription and queues its confirmation (store/emails.insert_message) together, and
:func:`follow` takes the address off the list (store/suppression.remove) and marks the link
used together. Every statement starts with the account id.

The daily limit holds across processes: on PostgreSQL the account's row is locked
(``FOR UPDATE``) before the count, so two API nodes cannot both see four; on SQLite the
single writer (and the write lock between processes) already serialises the count.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from mailpulse.core.access import AccessControl
from mailpulse.core.errors import ErrorKind
from mailpulse.core.model import NewMessage
from mailpulse.core.resubscribe import (
    LINK_LIFETIME,
    Confirm,
    Link,
    LinkRef,
    LinkState,
    ResubscribeRequest,
    link_state,
    refusal,
    window_start,
)
from mailpulse.store import emails, suppression
from mailpulse.store.db import Database
from mailpulse.store.tables import accounts, deliveries, resubscriptions
from mailpulse.store.text import storable


def sent_since(conn: Connection, account_id: int, since: datetime) -> int:
    """Resubscriptions of the account created after ``since`` (index account_id, created_at)."""
    query = (
        sa.select(sa.func.count())
        .select_from(resubscriptions)
        .where(resubscriptions.c.account_id == account_id, resubscriptions.c.created_at > since)
    )
    return int(conn.execute(query).scalar_one())


def _lock_account(conn: Connection, account_id: int) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())


def create(
    conn: Connection, account_id: int, request: ResubscribeRequest, now: datetime, confirm: Confirm
) -> ErrorKind | NewMessage:
    """Refuse, or record the resubscription and queue its confirmation (one transaction)."""
    _lock_account(conn, account_id)
    on_list = bool(suppression.suppressed_among(conn, account_id, [request.email]))
    refused = refusal(on_list, sent_since(conn, account_id, window_start(now)))
    if refused is not None:
        return refused
    resubscription_id: int = conn.execute(
        resubscriptions.insert().returning(resubscriptions.c.id),
        {
            "account_id": account_id,
            "email": request.email.lower(),
            "sender": request.sender.lower(),
            "lang": request.lang,
            "created_at": now,
        },
    ).scalar_one()
    message = confirm(resubscription_id)
    emails.insert_message(conn, message)
    delivery = (
        sa.select(deliveries.c.id)
        .where(deliveries.c.public_id == message.deliveries[0].public_id)
        .scalar_subquery()
    )
    conn.execute(
        resubscriptions.update()
        .where(resubscriptions.c.id == resubscription_id)
        .values(delivery_id=delivery)
    )
    return message


def _find(conn: Connection, ref: LinkRef, *, for_update: bool = False) -> Link | None:
    if not storable(ref.email):
        return None
    query = sa.select(
        resubscriptions.c.sender,
        resubscriptions.c.lang,
        resubscriptions.c.created_at,
        resubscriptions.c.confirmed_at,
    ).where(
        resubscriptions.c.id == ref.resubscription_id,
        resubscriptions.c.account_id == ref.account_id,
        resubscriptions.c.email == ref.email.lower(),
    )
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    return Link(
        ref=ref,
        sender=row.sender,
        lang=row.lang,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
    )


def find(conn: Connection, ref: LinkRef) -> Link | None:
    """The resubscription a verified link names (its account, id and address must agree)."""
    return _find(conn, ref)


def follow(conn: Connection, ref: LinkRef, now: datetime) -> tuple[Link, LinkState] | None:
    """The link's state; when OPEN, the address leaves the list and the link is used up."""
    found = _find(conn, ref, for_update=True)
    if found is None:
        return None
    state = link_state(found.created_at, found.confirmed_at, now)
    if state is LinkState.OPEN:
        suppression.remove(conn, ref.account_id, [ref.email])
        # Every open link of this address is used up with it (they may each be followed at
        # most once, and none of them later than LINK_LIFETIME: the index range below).
        conn.execute(
            resubscriptions.update()
            .where(
                resubscriptions.c.account_id == ref.account_id,
                resubscriptions.c.created_at >= now - LINK_LIFETIME,
                resubscriptions.c.email == ref.email.lower(),
                resubscriptions.c.confirmed_at.is_(None),
            )
            .values(confirmed_at=now)
        )
    return found, state


_BIGGEST_ID = 2**63 - 1  # a database binds at most a signed 64-bit integer


class SqlResubscribeStore:
    """core.resubscribe.ResubscribeStore over a Database; sender checks share the auth cache."""

    def __init__(self, db: Database, access: AccessControl) -> None:
        self.db = db
        self.access = access

    async def sender_check(self, account_id: int, sender: str) -> tuple[bool, bool]:
        return await self.access.sender_check(account_id, sender)

    async def create(
        self, account_id: int, request: ResubscribeRequest, now: datetime, confirm: Confirm
    ) -> ErrorKind | NewMessage:
        return await self.db.write(lambda conn: create(conn, account_id, request, now, confirm))

    async def link(self, ref: LinkRef) -> Link | None:
        if not _bindable(ref):
            return None
        return await self.db.read(lambda conn: find(conn, ref))

    async def follow(self, ref: LinkRef, now: datetime) -> tuple[Link, LinkState] | None:
        if not _bindable(ref):
            return None
        return await self.db.write(lambda conn: follow(conn, ref, now))


def _bindable(ref: LinkRef) -> bool:
    """Signed tokens are ours, so their numbers are too; checked anyway (never a 5xx)."""
    return ref.account_id <= _BIGGEST_ID and ref.resubscription_id <= _BIGGEST_ID
