"""The unsubscribe list's queries (store/suppression.py: listed_among, list_unsubscribed,
is_unsubscribed) and a send's suppressed deliveries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mailpulse.core.model import NewDelivery, NewMessage
from mailpulse.core.suppression import Listed
from mailpulse.store import emails, suppression
from mailpulse.store.db import Database
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import deliveries, delivery_queue
from tests.store.test_store import T0, make_account


def test_listed_among_says_why_each_address_is_held_per_account(db: Database) -> None:
    a, b = make_account(db, "a"), make_account(db, "b")
    entries = [
        Suppress("Ann@X.org", unsubscribe_by_link=True),
        Suppress("bob@x.org", bounced=True, bounce_category="bad_mailbox"),
    ]
    db.write_sync(lambda c: suppression.add(c, a, entries, T0))
    found = db.read_sync(
        lambda c: suppression.listed_among(c, a, ["ANN@x.org", "bob@x.org", "cid@x.org", "\x00"])
    )
    assert found == {
        "ann@x.org": Listed("ann@x.org", unsubscribe_by_link=True),
        "bob@x.org": Listed("bob@x.org", bounced=True, bounce_category="bad_mailbox"),
    }
    assert db.read_sync(lambda c: suppression.listed_among(c, b, ["ann@x.org"])) == {}


def test_the_unsubscribe_list_leaves_out_addresses_that_only_bounced(db: Database) -> None:
    a = make_account(db, "a")
    entries = [
        Suppress("one@x.org", unsubscribe_by_user=True, comment="c"),
        Suppress("two@x.org", bounced=True, bounce_category="bad_domain"),
        Suppress("three@x.org", spam_complaint=True),
    ]
    for n, entry in enumerate(entries):
        db.write_sync(lambda c, e=entry, n=n: suppression.add(c, a, [e], T0 + timedelta(hours=n)))
    rows = db.read_sync(lambda c: suppression.list_unsubscribed(c, a, limit=10))
    assert [r["email"] for r in rows] == ["three@x.org", "one@x.org"]
    assert db.read_sync(lambda c: suppression.is_unsubscribed(c, a, "TWO@x.org")) is False
    assert db.read_sync(lambda c: suppression.is_unsubscribed(c, a, "three@X.org")) is True
    assert db.read_sync(lambda c: suppression.is_unsubscribed(c, a, "a\x00@x.org")) is False
    day = db.read_sync(
        lambda c: suppression.list_unsubscribed(
            c, a, limit=10, since=T0, until=T0 + timedelta(hours=1)
        )
    )
    assert [r["email"] for r in day] == ["one@x.org"]
    # a later unsubscribe of the bounced address puts it on the list
    db.write_sync(lambda c: suppression.add(c, a, [Suppress("two@x.org", spam_complaint=True)], T0))
    assert db.read_sync(lambda c: suppression.is_unsubscribed(c, a, "two@x.org")) is True


def test_a_suppressed_delivery_is_stored_with_its_answer_and_never_queued(db: Database) -> None:
    a = make_account(db, "a")
    message = NewMessage(
        account_id=a,
        source="api",
        envelope_from="s@x.org",
        sender="s@x.org",
        subject="s",
        message_id_header="<m@x>",
        raw=b"Subject: s\r\n\r\nb\r\n",
        sender_ip="",
        template_id=None,
        created_at=T0,
        deliveries=(
            NewDelivery("id-1", "kept@x.org", "to"),
            NewDelivery("id-2", "held@x.org", "to", held="suppressed: spam complaint"),
        ),
    )
    db.write_sync(lambda c: emails.insert_message(c, message))
    rows = db.read_sync(
        lambda c: c.execute(
            sa.select(
                deliveries.c.public_id,
                deliveries.c.status,
                deliveries.c.smtp_answer_data,
                delivery_queue.c.delivery_id,
            )
            .select_from(
                deliveries.outerjoin(
                    delivery_queue, delivery_queue.c.delivery_id == deliveries.c.id
                )
            )
            .order_by(deliveries.c.public_id)
        ).all()
    )
    assert [(r[0], r[1], r[2], r[3] is not None) for r in rows] == [
        ("id-1", "queued", "", True),
        ("id-2", "suppressed", "suppressed: spam complaint", False),
    ]
    assert db.read_sync(lambda c: emails.count_log(c, a)) == 2
