"""The delivery recorder's transaction on the real engines: every bounce of a batch is listed
with the delivery's status change, and only the hard ones suppress the address."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mailpulse.delivery.classify import Classification
from mailpulse.delivery.queue import ClaimedDelivery, DeliveryResult
from mailpulse.delivery.recorder import describe_decision, record_batch
from mailpulse.store import suppression
from mailpulse.store.db import Database
from mailpulse.store.tables import bounces, delivery_attempts, events, messages
from tests.delivery.helpers import T0, delivery, rows, seed
from tests.delivery.test_queue import POLICY, do_claim

NOW = T0 + timedelta(seconds=5)


def result(
    c: ClaimedDelivery, outcome: str, category: str | None, code: int | None, text: str
) -> DeliveryResult:
    subcode = text.split(" ", 1)[0] if text[:1].isdigit() else ""
    return DeliveryResult(
        c,
        Classification(outcome, category),  # type: ignore[arg-type]
        code,
        subcode,
        text,
        host="mx.example.test",
        used_ip="192.0.2.1",
    )


def listed(db: Database) -> list[sa.Row[object]]:
    return rows(db, bounces)


def suppressed(db: Database, account_id: int, *emails: str) -> set[str]:
    return db.read_sync(lambda conn: suppression.suppressed_among(conn, account_id, emails))


def test_every_bounce_is_listed_and_only_a_bad_address_suppresses(ddb: Database) -> None:
    first = seed(ddb, ["gone@example.test", "blocked@example.test", "ok@example.test"])
    seed(ddb, ["gone@example.test", "later@example.test"], account_id=first.account_id)
    ddb.write_sync(
        lambda conn: conn.execute(
            sa.update(messages).values(subject="Spring sale", sender="News@Acme.test")
        )
    )
    claimed = do_claim(ddb)
    outcomes = {
        "gone@example.test": ("bounced", "bad_mailbox", 550, "5.1.1 User unknown"),
        "blocked@example.test": ("bounced", "policy", 550, "5.7.1 blocked using Spamhaus"),
        "ok@example.test": ("delivered", None, 250, "2.0.0 Ok"),
        "later@example.test": ("deferred", "temporary", 451, "4.3.0 later"),
    }
    batch = [result(c, *outcomes[c.recipient]) for c in claimed]
    decisions = ddb.write_sync(lambda conn: record_batch(conn, batch, NOW, POLICY))

    got = sorted((b.email_to, b.category, b.suppressed, b.smtp_answer_code) for b in listed(ddb))
    assert got == [
        ("blocked@example.test", "policy", False, 550),
        ("gone@example.test", "bad_mailbox", True, 550),
        ("gone@example.test", "bad_mailbox", True, 550),  # two messages, one address
    ]
    for row in listed(ddb):
        assert (row.account_id, row.source, row.send_date, row.created_at) == (
            first.account_id,
            "sync",
            NOW,
            NOW,
        )
        assert (row.sender, row.subject) == ("bounces@mailpulse.test", "Spring sale")
        assert row.delivery_id is not None
    assert suppressed(ddb, first.account_id, *outcomes) == {"gone@example.test"}
    (entry,) = rows(ddb, suppression.suppressions)
    assert (entry.bounced, entry.bounce_category) == (1, "bad_mailbox")

    types = sorted(e.type for e in rows(ddb, events))
    assert types == ["delivered", "hard_bounce", "hard_bounce", "soft_bounce"]

    lines = {d.delivery.recipient: describe_decision(d, NOW) for d in decisions}
    assert lines["gone@example.test"].endswith(
        "bounced 550 5.1.1 (5.1.1 User unknown); bad mailbox: address suppressed"
    )
    assert lines["blocked@example.test"].endswith(
        "(5.7.1 blocked using Spamhaus); policy: not suppressed (a block, not the address)"
    )
    assert lines["later@example.test"].endswith("(4.3.0 later), retry in 60s")
    assert lines["ok@example.test"].endswith("delivered 250 2.0.0 (2.0.0 Ok)")


def test_an_unexplained_5xx_is_listed_but_does_not_suppress(ddb: Database) -> None:
    seeded = seed(ddb, ["who@example.test"])
    (c,) = do_claim(ddb)
    ddb.write_sync(
        lambda conn: record_batch(conn, [result(c, "bounced", "other", 554, "nope")], NOW, POLICY)
    )
    (row,) = listed(ddb)
    assert (row.category, row.suppressed, row.smtp_answer_data) == ("other", False, "nope")
    assert suppressed(ddb, seeded.account_id, "who@example.test") == set()


def test_a_bounce_whose_claim_passed_to_another_worker_is_not_listed(ddb: Database) -> None:
    seed(ddb, ["gone@example.test"])
    (stale,) = do_claim(ddb, owner="slow")
    do_claim(ddb, owner="fast", now=T0 + timedelta(seconds=301))
    bounce = result(stale, "bounced", "bad_mailbox", 550, "5.1.1 User unknown")
    (decision,) = ddb.write_sync(lambda conn: record_batch(conn, [bounce], T0, POLICY))
    assert not decision.recorded
    assert listed(ddb) == []
    assert rows(ddb, suppression.suppressions) == []


def _attempted(db: Database, delivery_id: int, code: int | None, text: str, n: int) -> None:
    db.write_sync(
        lambda conn: conn.execute(
            sa.insert(delivery_attempts),
            [
                {
                    "delivery_id": delivery_id,
                    "attempted_at": T0 - timedelta(days=4, hours=i),
                    "code": code,
                    "subcode": text.split(" ", 1)[0] if text[:1].isdigit() else "",
                    "text": text,
                    "outcome": "deferred",
                }
                for i in range(n)
            ],
        )
    )


def test_an_expiry_suppresses_only_after_repeated_answers_blaming_the_address(
    ddb: Database,
) -> None:
    old = T0 - timedelta(days=5, seconds=1)
    seeded = seed(
        ddb,
        ["unknown@example.test", "unreachable@example.test", "once@example.test"],
        created_at=old,
    )
    unknown, unreachable, _once = seeded.delivery_ids
    user_unknown = "4.1.1 <unknown@example.test>: Recipient address rejected: User unknown"
    _attempted(ddb, unknown, 450, user_unknown, 3)
    _attempted(ddb, unreachable, None, "connect to mx.example.test: Connection refused", 3)
    claimed = {c.recipient: c for c in do_claim(ddb)}
    batch = [
        result(claimed["unknown@example.test"], "deferred", "temporary", 450, user_unknown),
        result(claimed["unreachable@example.test"], "deferred", "connection", None, "timed out"),
        result(claimed["once@example.test"], "deferred", "temporary", 450, user_unknown),
    ]
    ddb.write_sync(lambda conn: record_batch(conn, batch, NOW, POLICY))

    by_address = {b.email_to: b for b in listed(ddb)}
    assert {a: (b.category, b.suppressed) for a, b in by_address.items()} == {
        "unknown@example.test": ("expired_bad_address", True),
        "unreachable@example.test": ("expired", False),
        "once@example.test": ("expired", False),  # one answer is not "repeated"
    }
    for bounce in by_address.values():
        assert (bounce.smtp_answer_code, bounce.smtp_answer_subcode) == (554, "5.4.7")
        assert bounce.smtp_answer_data.startswith("expired after 5 days; last answer: ")
    assert suppressed(ddb, seeded.account_id, *by_address) == {"unknown@example.test"}
    assert delivery(ddb, "unknown@example.test").bounce_category == "expired_bad_address"
    assert delivery(ddb, "unreachable@example.test").bounce_category == "expired"
