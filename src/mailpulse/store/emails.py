"""Queries for the email aggregate: an accepted message, its deliveries, and the email log.

Every query here takes the caller's account id and filters on it first: a tenant can only ever
read its own rows, and each filter combination is served by an index that begins with
``account_id`` (see tables.py). The unfiltered total is not counted at all: it is read from
``log_counts``, which triggers keep exact in the inserting transaction (migration 0004).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler

from mailpulse.core import status
from mailpulse.core.model import NewMessage
from mailpulse.store.tables import deliveries, log_counts, messages
from mailpulse.store.text import storable

T = TypeVar("T")

# Built once: this is the hot path of every accepted email.
_INSERT_MESSAGE = messages.insert().returning(messages.c.id)
_INSERT_DELIVERY = deliveries.insert()


def insert_message(conn: Connection, message: NewMessage) -> int:
    """Store the message and queue one delivery per recipient (a recipient held by the
    suppression list is recorded as ``suppressed``, never queued); returns the message row id."""
    message_row: int = conn.execute(
        _INSERT_MESSAGE,
        {
            "account_id": message.account_id,
            "source": message.source,
            "envelope_from": message.envelope_from,
            "sender": message.sender,
            "subject": message.subject,
            "message_id_header": message.message_id_header,
            "total_size": len(message.raw),
            "sender_ip": message.sender_ip,
            "template_id": message.template_id,
            "raw": message.raw,
            "created_at": message.created_at,
        },
    ).scalar_one()
    sender = message.sender.lower()
    conn.execute(
        _INSERT_DELIVERY,
        [
            {
                "public_id": d.public_id,
                "account_id": message.account_id,
                "message_id": message_row,
                "recipient": d.recipient.lower(),
                "recipient_domain": d.recipient.rpartition("@")[2].lower(),
                "kind": d.kind,
                "sender": sender,
                "status": status.QUEUED if d.held is None else status.SUPPRESSED,
                "smtp_answer_data": d.held or "",
                "created_at": message.created_at,
                "updated_at": message.created_at,
            }
            for d in message.deliveries
        ],
    )
    # (triggers put each new pending delivery in delivery_queue, migration 0002 — a suppressed
    # one is not pending, so it is never queued — and count every one
    # in log_counts, migration 0004)
    return message_row


@dataclass(frozen=True)
class LogFilter:
    limit: int = 100
    offset: int = 0
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    sender: str | None = None
    recipient: str | None = None


class LogRow(NamedTuple):
    """One record of the email log, as the API lists it. Times are UTC text to the second,
    ``YYYY-MM-DD HH:MM:SS``, made by the database (see :class:`SecondText`)."""

    public_id: str
    sender: str
    recipient: str
    status: str
    created_at: str
    send_date: str  # when the receiving server accepted it; the acceptance time until then
    smtp_answer_code: int | None
    smtp_answer_subcode: str
    smtp_answer_data: str
    used_ip: str
    opens: int
    clicks: int
    subject: str
    total_size: int
    sender_ip: str


class SecondText(sa.sql.functions.FunctionElement[str]):
    """A stored time as ``YYYY-MM-DD HH:MM:SS`` text, formatted by the database.

    A listing returns up to 500 records with two times each; parsing SQLite's stored text into
    a ``datetime`` (SQLAlchemy's result processor) and formatting it again in Python was a
    large part of such a request. SQLite stores a ``DateTime`` as ``YYYY-MM-DD
    HH:MM:SS.ffffff`` text (SQLAlchemy's storage format), so its first 19 characters are the
    answer; PostgreSQL formats with ``to_char`` (which, like ``strftime``, drops the fraction).
    """

    type = sa.String()
    name = "second_text"
    inherit_cache = True


@compiles(SecondText, "sqlite")
def _second_text_sqlite(element: SecondText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 19)"


@compiles(SecondText, "postgresql")
def _second_text_postgresql(element: SecondText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD HH24:MI:SS')"


# In LogRow's order.
_LOG_COLUMNS = [
    deliveries.c.public_id,
    deliveries.c.sender,
    deliveries.c.recipient,
    deliveries.c.status,
    SecondText(deliveries.c.created_at),
    SecondText(sa.func.coalesce(deliveries.c.send_date, deliveries.c.created_at)),
    deliveries.c.smtp_answer_code,
    deliveries.c.smtp_answer_subcode,
    deliveries.c.smtp_answer_data,
    deliveries.c.used_ip,
    deliveries.c.opens,
    deliveries.c.clicks,
    messages.c.subject,
    messages.c.total_size,
    messages.c.sender_ip,
]
_LOG_FROM = deliveries.join(messages, messages.c.id == deliveries.c.message_id)


def _unindexed(column: sa.ColumnElement[T]) -> sa.ColumnElement[T]:
    """``+column``: SQLite's documented way to keep the planner from serving a term from an
    index. mailpulse keeps no SQLite statistics (ANALYZE), and without them the planner ties
    between indexes that match equally many columns and may take the wrong one; for those
    queries the term that must not lead is marked. (PostgreSQL has statistics, from autovacuum.)
    """
    return sa.sql.expression.UnaryExpression(
        column, operator=operators.custom_op("+"), type_=column.type
    )


class _Shape(NamedTuple):
    """Which filters a query has. Its statement is built once per shape and engine, the values
    bound at each run: building a statement and its cache key took about 1 ms of a 500-record
    listing."""

    since: bool
    until: bool
    sender: bool
    recipient: bool

    @classmethod
    def of(cls, flt: LogFilter) -> _Shape:
        return cls(
            flt.since is not None, flt.until is not None, bool(flt.sender), bool(flt.recipient)
        )


def _conditions(shape: _Shape, *, sqlite: bool) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [
        deliveries.c.account_id == sa.bindparam("account_id")
    ]
    if shape.since:
        conditions.append(deliveries.c.created_at >= sa.bindparam("since"))
    if shape.until:
        conditions.append(deliveries.c.created_at < sa.bindparam("until"))
    if shape.sender:
        sender: sa.ColumnElement[Any] = deliveries.c.sender
        if sqlite and shape.recipient:
            # Both match (account_id, x, created_at) indexes equally well; a recipient has a
            # few hundred records, a sender can have millions: the recipient index must lead.
            sender = _unindexed(sender)
        conditions.append(sender == sa.bindparam("sender"))
    if shape.recipient:
        conditions.append(deliveries.c.recipient == sa.bindparam("recipient"))
    return conditions


def _params(account_id: int, flt: LogFilter) -> dict[str, Any]:
    """The values of :func:`_conditions`' parameters (those a shape lacks are not used)."""
    return {
        "account_id": account_id,
        "since": flt.since,
        "until": flt.until,
        "sender": (flt.sender or "").lower(),
        "recipient": (flt.recipient or "").lower(),
        "limit": flt.limit,
        "offset": flt.offset,
    }


def _matches_nothing(flt: LogFilter) -> bool:
    return not all(storable(value) for value in (flt.sender or "", flt.recipient or ""))


@functools.cache
def _list_statement(shape: _Shape, sqlite: bool) -> sa.Select[Any]:
    """Newest first. The page of ids is chosen on the deliveries index alone, then joined."""
    newest_first = (deliveries.c.created_at.desc(), deliveries.c.id.desc())
    page = (
        sa.select(deliveries.c.id)
        .where(*_conditions(shape, sqlite=sqlite))
        .order_by(*newest_first)
        .limit(sa.bindparam("limit", type_=sa.BigInteger()))
        .offset(sa.bindparam("offset", type_=sa.BigInteger()))
        .subquery()
    )
    return (
        sa.select(*_LOG_COLUMNS)
        .select_from(_LOG_FROM.join(page, page.c.id == deliveries.c.id))
        .order_by(*newest_first)
    )


def list_log(conn: Connection, account_id: int, flt: LogFilter) -> list[LogRow]:
    """A page of the account's log, newest first."""
    if _matches_nothing(flt):
        return []
    query = _list_statement(_Shape.of(flt), conn.dialect.name == "sqlite")
    return list(map(LogRow._make, conn.execute(query, _params(account_id, flt)).all()))


_COUNTED_TOTAL = sa.select(sa.func.coalesce(sa.func.sum(log_counts.c.total), 0)).where(
    log_counts.c.account_id == sa.bindparam("account_id")
)


@functools.cache
def _count_statement(shape: _Shape, sqlite: bool) -> sa.Select[Any]:
    return (
        sa.select(sa.func.count()).select_from(deliveries).where(*_conditions(shape, sqlite=sqlite))
    )


def count_log(conn: Connection, account_id: int, flt: LogFilter | None = None) -> int:
    """How many log records match; without a filter, the account's kept count (a few rows)."""
    flt = flt or LogFilter()
    shape = _Shape.of(flt)
    if not any(shape):
        return int(conn.execute(_COUNTED_TOTAL, {"account_id": account_id}).scalar_one())
    if _matches_nothing(flt):
        return 0
    query = _count_statement(shape, conn.dialect.name == "sqlite")
    return int(conn.execute(query, _params(account_id, flt)).scalar_one())


_IDS = sa.ARRAY(sa.String())


@functools.cache
def _records_statement(sqlite: bool) -> sa.Select[Any]:
    account: sa.ColumnElement[Any] = deliveries.c.account_id
    wanted: sa.ColumnElement[bool]
    if sqlite:
        # Else, for hundreds of ids, SQLite may walk the account's whole created-at index
        # (0.5 s at a million records) rather than look each id up in the unique index.
        account = _unindexed(account)
        wanted = deliveries.c.public_id.in_(sa.bindparam("ids", expanding=True))
    else:
        # One array parameter: an IN of 500 parameters costs more to render, cast and send
        # than the query takes to run.
        wanted = deliveries.c.public_id == sa.any_(sa.bindparam("ids", type_=_IDS))
    return (
        sa.select(*_LOG_COLUMNS)
        .select_from(_LOG_FROM)
        .where(account == sa.bindparam("account_id"), wanted)
    )


def get_log_records(conn: Connection, account_id: int, public_ids: list[str]) -> list[LogRow]:
    """The records among ``public_ids`` that belong to the account, in the order asked."""
    public_ids = [pid for pid in public_ids if storable(pid)]
    if not public_ids:
        return []
    query = _records_statement(conn.dialect.name == "sqlite")
    result = conn.execute(query, {"account_id": account_id, "ids": public_ids})
    found = {row.public_id: row for row in map(LogRow._make, result.all())}
    return [found[pid] for pid in dict.fromkeys(public_ids) if pid in found]


def warm_up(conn: Connection) -> None:
    """Run every query of the log once, for an account that has no rows (id 0): the first
    request after start then finds them built and compiled (SQLAlchemy's first build and
    compile of a statement shape costs more than running it), and the connection's schema
    parsed. Takes a few milliseconds; ``Database.start`` runs it (and waits a second at most)."""
    shapes = [
        LogFilter(since=since, sender=sender, recipient=recipient)
        for since in (None, datetime(2000, 1, 1))
        for sender in (None, "-")
        for recipient in (None, "-")
    ]
    for flt in shapes:
        list_log(conn, 0, flt)
        list_log(conn, 0, replace(flt, until=datetime(2000, 1, 2)))
    count_log(conn, 0)
    get_log_records(conn, 0, ["-"])
