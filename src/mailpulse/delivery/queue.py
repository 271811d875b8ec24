"""The delivery queue: claiming due deliveries with a lease, and recording what happened.

The queue is the narrow ``delivery_queue`` table: one row per delivery still to be attempted,
indexed on ``next_attempt_at``, so a claim reads about ``limit`` index entries however long the
queue is, and writes only these small rows (the wide ``deliveries`` log rows, with their seven
indexes, are written once per attempt, with its outcome).

Claiming sets ``lease_owner``/``lease_until`` and also moves ``next_attempt_at`` to the lease's
end. That keeps rows in flight out of the index range the next claim scans (no wading through
other workers' claims), and makes an abandoned claim due again, by itself, once its lease has
run out: a dead worker's deliveries are claimed again; a live worker's never are. A delivered
or bounced delivery leaves the queue; a deferred one gets its next attempt time.

On PostgreSQL the selection takes ``FOR UPDATE SKIP LOCKED`` so concurrent claimers pass each
other by; on SQLite every write runs inside ``BEGIN IMMEDIATE`` on a writer connection
(``Database.write``), so a single UPDATE … RETURNING has the same effect.

A live worker renews its leases (:func:`renew`, one statement for all it holds) every third
of a lease, so leases can be short (30 s) and a dead worker's claims come back quickly. A
worker starting on a host also frees at once the claims of that host's dead processes
(:func:`free_owners`, see ``delivery/owner.py``).

A delivery still deferred when its retry window (``RetryPolicy.window``) has run out bounces
as expired; whether that expiry condemns the address depends on what every attempt was told
(``delivery/classify.py``, ``expired_classification``), so the attempts are read back then.

A try that failed in an unexpected way (a bug, not an SMTP answer) is recorded as a deferral
with its reason like any other; once the same error has been recorded
``RetryPolicy.max_unexpected_failures`` times for a delivery, it bounces instead of being
tried for the whole retry window.

Run these functions through ``Database.write``: they expect to be inside a transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Connection,
    Integer,
    String,
    Update,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from mailpulse.core import status
from mailpulse.delivery.backoff import RetryPolicy
from mailpulse.delivery.classify import (
    BOUNCED,
    DELIVERED,
    INTERNAL,
    Answer,
    Classification,
    expired_classification,
)
from mailpulse.store.tables import (
    deliveries,
    delivery_attempts,
    delivery_queue,
    events,
    messages,
)

EXPIRED_SUBCODE = "5.4.7"
UNEXPECTED_SUBCODE = "5.3.0"


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    public_id: str
    account_id: int
    message_id: int
    recipient: str
    recipient_domain: str
    attempts: int
    created_at: datetime
    lease_owner: str
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    envelope_from: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One attempt at one delivery: the reply (code None: no reply) and where it came from."""

    delivery: ClaimedDelivery
    classification: Classification
    code: int | None
    subcode: str
    text: str
    host: str = ""
    used_ip: str = ""
    #: the try failed in an unexpected way (an exception, not a reply): see the module doc
    unexpected: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """What :func:`record_results` decided for one result, for the worker's log line."""

    public_id: str
    domain: str
    outcome: str
    code: int | None
    subcode: str
    text: str
    next_attempt_at: datetime | None
    recorded: bool  # False: the lease had passed to another worker; only the attempt is kept
    #: the final verdict (an expiry's, a give-up's), and whose: the recorder lists bounces
    classification: Classification
    delivery: ClaimedDelivery


_DETAILS = (
    deliveries.c.id,
    deliveries.c.public_id,
    deliveries.c.account_id,
    deliveries.c.message_id,
    deliveries.c.recipient,
    deliveries.c.recipient_domain,
    deliveries.c.attempts,
    deliveries.c.created_at,
)


def _claim_statement(postgresql: bool) -> Update:
    q = delivery_queue
    now = bindparam("now", type_=q.c.next_attempt_at.type)
    due = (
        select(q.c.delivery_id)
        .where(q.c.next_attempt_at <= now, or_(q.c.lease_until.is_(None), q.c.lease_until < now))
        .order_by(q.c.next_attempt_at)
        .limit(bindparam("limit", type_=Integer()))
    )
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    until = bindparam("until", type_=q.c.lease_until.type)
    # One statement leases the due rows (UPDATE … RETURNING). PostgreSQL hands back the
    # deliveries' details in the same statement (UPDATE … FROM deliveries); SQLite's RETURNING
    # may not name a FROM table, so there the details are a second, by-key select.
    leased = (
        update(q)
        .where(q.c.delivery_id.in_(due.scalar_subquery()))
        .values(
            lease_owner=bindparam("owner", type_=String()), lease_until=until, next_attempt_at=until
        )
    )
    if postgresql:
        return leased.where(deliveries.c.id == q.c.delivery_id).returning(*_DETAILS)
    return leased.returning(q.c.delivery_id)


# Built once: building and compiling the statements would cost more than running them.
_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}
_CLAIMED = select(*_DETAILS).where(deliveries.c.id.in_(bindparam("ids", expanding=True)))


def claim(
    conn: Connection, now: datetime, owner: str, limit: int, lease_seconds: float
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries to ``owner``; ordered by destination domain."""
    until = now + timedelta(seconds=lease_seconds)
    postgresql = conn.dialect.name == "postgresql"
    params = {"now": now, "limit": limit, "until": until, "owner": owner}
    result = conn.execute(_CLAIM[postgresql], params)
    if not postgresql:
        ids = [row[0] for row in result]
        if not ids:
            return []
        result = conn.execute(_CLAIMED, {"ids": ids})
    claimed = [
        ClaimedDelivery(
            id_,
            public_id,
            account_id,
            message_id,
            recipient,
            domain.lower(),
            attempts,
            created_at,
            owner,
            until,
        )
        for (
            id_,
            public_id,
            account_id,
            message_id,
            recipient,
            domain,
            attempts,
            created_at,
        ) in result
    ]
    # Group by destination (and message within it) so that sessions carry many messages.
    claimed.sort(key=lambda c: (c.recipient_domain, c.message_id, c.id))
    return claimed


def release(conn: Connection, claimed: Sequence[ClaimedDelivery], now: datetime) -> int:
    """Give back claims not attempted (on shutdown): due again at once, for any worker."""
    if not claimed:
        return 0
    owner = claimed[0].lease_owner
    q = delivery_queue
    result = conn.execute(
        update(q)
        .where(q.c.delivery_id.in_([c.id for c in claimed]), q.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, next_attempt_at=now)
    )
    return result.rowcount


_UNTIL = bindparam("until", type_=delivery_queue.c.lease_until.type)
_RENEW = (
    update(delivery_queue)
    .where(
        delivery_queue.c.delivery_id.in_(bindparam("ids", expanding=True)),
        delivery_queue.c.lease_owner == bindparam("owner", type_=String()),
    )
    .values(lease_until=_UNTIL, next_attempt_at=_UNTIL)
)


def renew(conn: Connection, ids: Sequence[int], owner: str, until: datetime) -> int:
    """Extend ``owner``'s leases on ``ids`` to ``until`` (one statement); how many it still held."""
    if not ids:
        return 0
    return conn.execute(_RENEW, {"ids": list(ids), "owner": owner, "until": until}).rowcount


def lease_owners(conn: Connection, now: datetime, prefix: str) -> list[str]:
    """The owners whose name starts with ``prefix`` holding a lease that has not run out."""
    q = delivery_queue
    query = (
        select(q.c.lease_owner)
        .where(q.c.lease_until > now, q.c.lease_owner.startswith(prefix, autoescape=True))
        .distinct()
    )
    return [str(owner) for owner in conn.execute(query).scalars()]


def free_owners(conn: Connection, owners: Sequence[str], now: datetime) -> int:
    """Give back every claim of ``owners`` (dead processes): due again at once."""
    if not owners:
        return 0
    q = delivery_queue
    result = conn.execute(
        update(q)
        .where(q.c.lease_owner.in_(list(owners)))
        .values(lease_owner=None, lease_until=None, next_attempt_at=now)
    )
    return result.rowcount


def load_messages(conn: Connection, ids: Sequence[int]) -> dict[int, StoredMessage]:
    """The stored bytes and envelope sender of the given messages."""
    if not ids:
        return {}
    m = messages
    rows = conn.execute(
        select(m.c.id, m.c.envelope_from, m.c.raw).where(m.c.id.in_(sorted(set(ids))))
    ).all()
    return {row.id: StoredMessage(row.id, row.envelope_from, bytes(row.raw)) for row in rows}


# The writes of record_results, built once like the claim (executemany parameters).
_RECORD = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("_id"))
    .values(
        status=bindparam("_status"),
        updated_at=bindparam("_updated_at"),
        send_date=bindparam("_send_date"),
        attempts=bindparam("_attempts"),
        smtp_answer_code=bindparam("_code"),
        smtp_answer_subcode=bindparam("_subcode"),
        smtp_answer_data=bindparam("_data"),
        used_ip=bindparam("_used_ip"),
        bounce_category=bindparam("_category"),
    )
)
_DEQUEUE = delete(delivery_queue).where(
    delivery_queue.c.delivery_id.in_(bindparam("ids", expanding=True))
)
_REQUEUE = (
    update(delivery_queue)
    .where(delivery_queue.c.delivery_id == bindparam("_id"))
    .values(next_attempt_at=bindparam("_next_attempt_at"), lease_owner=None, lease_until=None)
)


def _final_event(result: DeliveryResult, classification: Classification) -> str:
    if classification.outcome == DELIVERED:
        return "delivered"
    return "hard_bounce" if classification.hard else "soft_bounce"


def _repeats(conn: Connection, delivery_id: int, text: str) -> int:
    """How many earlier attempts of a delivery ended with exactly this text."""
    a = delivery_attempts
    query = select(func.count()).where(a.c.delivery_id == delivery_id, a.c.text == text)
    return int(conn.execute(query).scalar_one())


def _may_expire(result: DeliveryResult, now: datetime, policy: RetryPolicy) -> bool:
    outcome = result.classification.outcome
    return outcome not in (DELIVERED, BOUNCED) and policy.expired(result.delivery.created_at, now)


def _answers(conn: Connection, delivery_ids: list[int]) -> dict[int, list[Answer]]:
    """The answers of the earlier attempts of deliveries about to expire, oldest first (one
    query per batch; an expiry happens once in a delivery's life)."""
    if not delivery_ids:
        return {}
    a = delivery_attempts
    query = (
        select(a.c.delivery_id, a.c.code, a.c.subcode, a.c.text)
        .where(a.c.delivery_id.in_(delivery_ids))
        .order_by(a.c.delivery_id, a.c.attempted_at, a.c.id)
    )
    found: dict[int, list[Answer]] = {}
    for row in conn.execute(query):
        found.setdefault(row.delivery_id, []).append((row.code, row.subcode, row.text))
    return found


def record_results(
    conn: Connection,
    results: Sequence[DeliveryResult],
    now: datetime,
    policy: RetryPolicy | None = None,
) -> list[Decision]:
    """Write each attempt's outcome; return what was decided for each (in order).

    An attempt row is always written. The delivery row (and, for a final outcome, an event
    row) only while the attempt's worker still holds the lease: a worker whose lease ran out
    and was taken over must not overwrite the newer owner's record.
    """
    if not results:
        return []
    policy = policy or RetryPolicy()
    q = delivery_queue
    ids = [r.delivery.id for r in results]
    holders = select(q.c.delivery_id, q.c.lease_owner).where(q.c.delivery_id.in_(ids))
    if conn.dialect.name == "postgresql":
        holders = holders.with_for_update()
    held = {(row.delivery_id, row.lease_owner) for row in conn.execute(holders)}
    history = _answers(conn, [r.delivery.id for r in results if _may_expire(r, now, policy)])
    attempt_rows: list[dict[str, object]] = []
    update_rows: list[dict[str, object]] = []
    event_rows: list[dict[str, object]] = []
    decisions: list[Decision] = []
    for result in results:
        delivery = result.delivery
        classification = result.classification
        text_ = result.text
        subcode = result.subcode
        held_now = (delivery.id, delivery.lease_owner) in held
        if (
            result.unexpected
            and held_now
            and _repeats(conn, delivery.id, text_) + 1 >= policy.max_unexpected_failures
        ):
            classification = Classification(BOUNCED, INTERNAL)
            subcode = UNEXPECTED_SUBCODE
            text_ = f"gave up after {policy.max_unexpected_failures} identical failures: {text_}"
        attempt_rows.append(
            {
                "delivery_id": delivery.id,
                "attempted_at": now,
                "host": result.host[:255],
                "used_ip": result.used_ip[:64],
                "code": result.code,
                "subcode": subcode[:16],
                "text": text_,
                "outcome": classification.outcome,
            }
        )
        if not held_now:
            decisions.append(
                Decision(
                    delivery.public_id,
                    delivery.recipient_domain,
                    classification.outcome,
                    result.code,
                    subcode,
                    text_,
                    None,
                    recorded=False,
                    classification=classification,
                    delivery=delivery,
                )
            )
            continue
        attempts = delivery.attempts + 1
        next_at: datetime | None = None
        if classification.outcome not in (DELIVERED, BOUNCED):
            if policy.expired(delivery.created_at, now):
                days = policy.window.total_seconds() / 86400
                last = f"{result.code or ''} {result.subcode} {result.text}".strip()
                text_ = f"expired after {days:g} days" + (f"; last answer: {last}" if last else "")
                subcode = EXPIRED_SUBCODE
                answer = (result.code, result.subcode, result.text)
                classification = expired_classification([*history.get(delivery.id, ()), answer])
            else:
                next_at = policy.next_attempt_at(attempts, now)
        final = classification.outcome in (DELIVERED, BOUNCED)
        decisions.append(
            Decision(
                delivery.public_id,
                delivery.recipient_domain,
                classification.outcome,
                result.code,
                subcode,
                text_,
                next_at,
                recorded=True,
                classification=classification,
                delivery=delivery,
            )
        )
        update_rows.append(
            {
                "_id": delivery.id,
                "_status": {
                    "delivered": status.DELIVERED,
                    "bounced": status.BOUNCED,
                    "deferred": status.DEFERRED,
                }[classification.outcome],
                "_updated_at": now,
                "_send_date": now if final else None,
                "_next_attempt_at": next_at,
                "_attempts": attempts,
                "_code": result.code,
                "_subcode": subcode[:16],
                "_data": text_,
                "_used_ip": result.used_ip[:64],
                "_category": classification.category
                if classification.outcome != DELIVERED
                else None,
            }
        )
        if final:
            event_rows.append(
                {
                    "account_id": delivery.account_id,
                    "delivery_id": delivery.id,
                    "type": _final_event(result, classification),
                    "created_at": now,
                    "data": json.dumps(
                        {
                            "email_id": delivery.public_id,
                            "recipient": delivery.recipient,
                            "smtp_answer_code": result.code,
                            "smtp_answer_subcode": subcode,
                            "smtp_answer_data": text_,
                            "bounce_category": classification.category,
                            "used_ip": result.used_ip,
                            "host": result.host,
                            "attempts": attempts,
                        },
                        separators=(",", ":"),
                    ),
                }
            )
    conn.execute(insert(delivery_attempts), attempt_rows)
    if update_rows:
        conn.execute(_RECORD, update_rows)
        finished = [row["_id"] for row in update_rows if row["_next_attempt_at"] is None]
        if finished:
            conn.execute(_DEQUEUE, {"ids": finished})
        retries = [
            {"_id": row["_id"], "_next_attempt_at": row["_next_attempt_at"]}
            for row in update_rows
            if row["_next_attempt_at"] is not None
        ]
        if retries:
            conn.execute(_REQUEUE, retries)
    if event_rows:
        conn.execute(insert(events), event_rows)
    return decisions
