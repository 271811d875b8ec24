"""The suppression list's queries (store/suppression.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from mailpulse.store import suppression
from mailpulse.store.db import Database
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import suppressions
from tests.store.test_store import T0, make_account


def test_added_addresses_are_found_case_insensitively_per_account(db: Database) -> None:
    a, b = make_account(db, "a"), make_account(db, "b")
    db.write_sync(lambda c: suppression.add(c, a, [Suppress("Ann@X.org", bounced=True)], T0))
    found = db.read_sync(lambda c: suppression.suppressed_among(c, a, ["ann@x.org", "bob@x.org"]))
    assert found == {"ann@x.org"}
    assert db.read_sync(lambda c: suppression.suppressed_among(c, b, ["ann@x.org"])) == set()


def test_adding_again_sets_more_flags_and_clears_none(db: Database) -> None:
    a = make_account(db, "a")
    db.write_sync(lambda c: suppression.add(c, a, [Suppress("ann@x.org", bounced=True)], T0))
    db.write_sync(
        lambda c: suppression.add(
            c, a, [Suppress("ann@x.org", unsubscribe_by_user=True, comment="asked")], T0
        )
    )
    row = db.read_sync(
        lambda c: c.execute(sa.select(suppressions).where(suppressions.c.account_id == a)).one()
    )
    assert (row.bounced, row.unsubscribe_by_user, row.unsubscribe_by_link) == (1, 1, 0)
    assert row.comment == "asked"


def test_remove_takes_the_address_off_whatever_put_it_there(db: Database) -> None:
    a = make_account(db, "a")
    entries = [Suppress("ann@x.org", spam_complaint=True), Suppress("bob@x.org", bounced=True)]
    db.write_sync(lambda c: suppression.add(c, a, entries, T0))
    assert db.write_sync(lambda c: suppression.remove(c, a, ["ANN@x.org", "nobody@x.org"])) == 1
    found = db.read_sync(lambda c: suppression.suppressed_among(c, a, ["ann@x.org", "bob@x.org"]))
    assert found == {"bob@x.org"}


def test_a_condemning_bounce_is_listed_and_suppresses_a_soft_one_only_lists(db: Database) -> None:
    from mailpulse.store import bounces
    from mailpulse.store.tables import bounces as bounce_table

    a = make_account(db, "a")

    def bounce(to: str, suppress: bool) -> bounces.NewBounce:
        return bounces.NewBounce(
            a,
            None,
            to,
            "s@x.org",
            "subj\x00",
            T0,
            550,
            "5.1.1",
            "no\x00",
            "bad_mailbox",
            "sync",
            suppress,
        )

    db.write_sync(lambda c: bounces.record(c, bounce("Ann@x.org", True), T0))
    db.write_sync(lambda c: bounces.record(c, bounce("bob@x.org", False), T0))
    found = db.read_sync(lambda c: suppression.suppressed_among(c, a, ["ann@x.org", "bob@x.org"]))
    assert found == {"ann@x.org"}
    rows = db.read_sync(lambda c: c.execute(sa.select(bounce_table)).all())
    assert sorted((r.email_to, r.suppressed, r.subject) for r in rows) == [
        ("ann@x.org", True, "subj"),
        ("bob@x.org", False, "subj"),
    ]
