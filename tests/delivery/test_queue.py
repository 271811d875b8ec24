"""Claims and results on the real engines (SQLite file; PostgreSQL when configured)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa

from mailpulse.delivery.backoff import RetryPolicy
from mailpulse.delivery.classify import Classification
from mailpulse.delivery.queue import (
    _CLAIM,
    ClaimedDelivery,
    DeliveryResult,
    claim,
    load_messages,
    record_results,
    release,
)
from mailpulse.store.db import Database
from mailpulse.store.tables import delivery_attempts, events
from tests.delivery.helpers import RAW, T0, delivery, rows, seed, set_row


class Half:
    def random(self) -> float:
        return 0.5


POLICY = RetryPolicy(rng=Half())


def do_claim(db: Database, owner: str = "w1", limit: int = 100, now=T0) -> list[ClaimedDelivery]:
    return db.write_sync(lambda c: claim(c, now, owner, limit, 300))


def test_claim_takes_due_rows_oldest_first_grouped_by_domain(ddb: Database) -> None:
    seed(ddb, ["a@zeta.test", "b@alpha.test"])
    seed(ddb, ["c@zeta.test"], created_at=T0 - timedelta(minutes=1))
    set_row(ddb, "c@zeta.test", next_attempt_at=T0 - timedelta(minutes=1))
    seed(ddb, ["later@alpha.test"])
    set_row(ddb, "later@alpha.test", next_attempt_at=T0 + timedelta(seconds=1))  # not due
    seed(ddb, ["done@alpha.test"])
    set_row(ddb, "done@alpha.test", status="delivered")  # not pending
    seed(ddb, ["held@alpha.test"])
    set_row(  # leased by a live worker
        ddb, "held@alpha.test", lease_owner="other", lease_until=T0 + timedelta(minutes=1)
    )
    claimed = do_claim(ddb, limit=2)
    # the oldest due row is among the two, and the batch is ordered by (domain, message)
    assert "c@zeta.test" in {c.recipient for c in claimed}
    assert claimed == sorted(claimed, key=lambda c: (c.recipient_domain, c.message_id))
    rest = do_claim(ddb, owner="w2")
    assert len(rest) == 1
    assert {c.recipient for c in claimed + rest} == {"a@zeta.test", "b@alpha.test", "c@zeta.test"}
    assert [c.recipient_domain for c in rest] == sorted(c.recipient_domain for c in rest)
    for c in claimed:
        row = delivery(ddb, c.recipient)
        assert (row.lease_owner, row.lease_until) == ("w1", T0 + timedelta(seconds=300))
        assert row.next_attempt_at == row.lease_until  # out of the due range while held
        assert c.lease_until == row.lease_until
    assert do_claim(ddb, owner="w3") == []


def test_an_expired_lease_is_claimed_again(ddb: Database) -> None:
    seed(ddb, ["a@example.test"])
    (first,) = do_claim(ddb, owner="dead")
    assert do_claim(ddb, owner="w2", now=T0 + timedelta(seconds=299)) == []
    (again,) = do_claim(ddb, owner="w2", now=T0 + timedelta(seconds=301))
    assert again.id == first.id
    assert delivery(ddb, "a@example.test").lease_owner == "w2"


def test_release_makes_claims_due_at_once(ddb: Database) -> None:
    seed(ddb, ["a@example.test", "b@example.test"])
    claimed = do_claim(ddb)
    assert ddb.write_sync(lambda c: release(c, claimed[:1], T0)) == 1
    (again,) = do_claim(ddb, owner="w2")
    assert again.id == claimed[0].id


def _result(
    c: ClaimedDelivery,
    outcome: str,
    category: str | None,
    code: int | None,
    subcode: str,
    text: str,
) -> DeliveryResult:
    return DeliveryResult(
        c,
        Classification(outcome, category),
        code,
        subcode,
        text,  # type: ignore[arg-type]
        host="mx.example.test",
        used_ip="192.0.2.1",
    )


def test_record_results(ddb: Database) -> None:
    seed(ddb, ["ok@example.test", "bad@example.test", "later@example.test"])
    seed(ddb, ["old@example.test"], created_at=T0 - timedelta(days=5, seconds=1))
    by = {c.recipient: c for c in do_claim(ddb)}
    now = T0 + timedelta(seconds=5)
    results = [
        _result(by["ok@example.test"], "delivered", None, 250, "2.0.0", "2.0.0 Ok"),
        _result(by["bad@example.test"], "bounced", "bad_mailbox", 550, "5.1.1", "5.1.1 unknown"),
        _result(by["later@example.test"], "deferred", "temporary", 451, "4.3.0", "4.3.0 later"),
        _result(by["old@example.test"], "deferred", "temporary", 451, "4.3.0", "4.3.0 later"),
    ]
    decisions = ddb.write_sync(lambda c: record_results(c, results, now, POLICY))
    assert [(d.outcome, d.recorded) for d in decisions] == [
        ("delivered", True),
        ("bounced", True),
        ("deferred", True),
        ("bounced", True),
    ]
    assert decisions[2].next_attempt_at == now + timedelta(minutes=1)

    ok = delivery(ddb, "ok@example.test")
    assert (ok.status, ok.smtp_answer_code, ok.smtp_answer_subcode, ok.smtp_answer_data) == (
        "delivered",
        250,
        "2.0.0",
        "2.0.0 Ok",
    )
    assert (ok.used_ip, ok.send_date, ok.attempts, ok.bounce_category) == (
        "192.0.2.1",
        now,
        1,
        None,
    )
    assert (ok.lease_owner, ok.lease_until, ok.next_attempt_at) == (None, None, None)

    bad = delivery(ddb, "bad@example.test")
    assert (bad.status, bad.bounce_category, bad.smtp_answer_code) == (
        "bounced",
        "bad_mailbox",
        550,
    )

    later = delivery(ddb, "later@example.test")
    assert (later.status, later.attempts, later.smtp_answer_code) == ("deferred", 1, 451)
    assert later.next_attempt_at == now + timedelta(minutes=1)
    assert later.send_date is None and later.lease_owner is None

    old = delivery(ddb, "old@example.test")
    assert (old.status, old.bounce_category, old.smtp_answer_subcode) == (
        "bounced",
        "expired",
        "5.4.7",
    )
    assert old.smtp_answer_data.startswith("expired after 5 days")
    assert "451 4.3.0" in old.smtp_answer_data

    attempts = rows(ddb, delivery_attempts)
    assert len(attempts) == 4
    assert {(a.host, a.used_ip, a.attempted_at) for a in attempts} == {
        ("mx.example.test", "192.0.2.1", now)
    }
    evs = {e.delivery_id: e for e in rows(ddb, events)}
    assert {e.type for e in evs.values()} == {"delivered", "hard_bounce", "soft_bounce"}
    assert later.id not in evs
    data = json.loads(evs[bad.id].data)
    assert data["smtp_answer_code"] == 550 and data["bounce_category"] == "bad_mailbox"
    assert json.loads(evs[old.id].data)["bounce_category"] == "expired"


def test_a_lost_lease_does_not_overwrite_the_new_owner(ddb: Database) -> None:
    seed(ddb, ["a@example.test"])
    (stale,) = do_claim(ddb, owner="slow")
    (fresh,) = do_claim(ddb, owner="fast", now=T0 + timedelta(seconds=301))
    result = _result(stale, "bounced", "bad_mailbox", 550, "5.1.1", "no")
    (decision,) = ddb.write_sync(lambda c: record_results(c, [result], T0, POLICY))
    assert not decision.recorded
    row = delivery(ddb, "a@example.test")
    assert (row.status, row.lease_owner) == ("queued", "fast")
    assert len(rows(ddb, delivery_attempts)) == 1  # the attempt itself is still on record
    assert rows(ddb, events) == []
    assert fresh.id == stale.id


def test_load_messages(ddb: Database) -> None:
    seeded = seed(ddb, ["a@example.test"])
    loaded = ddb.read_sync(lambda c: load_messages(c, [seeded.message_id, seeded.message_id]))
    assert loaded[seeded.message_id].raw == RAW
    assert loaded[seeded.message_id].envelope_from == "bounces@mailpulse.test"


def test_concurrent_claims_are_disjoint(ddb: Database) -> None:
    for i in range(20):
        seed(ddb, [f"u{j}.{i}@example.test" for j in range(10)])
    results: dict[str, list[int]] = {}
    barrier = threading.Barrier(4)

    def claimer(owner: str) -> None:
        got: list[int] = []
        barrier.wait()
        while batch := do_claim(ddb, owner=owner, limit=7):
            got.extend(c.id for c in batch)
        results[owner] = got

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for got in results.values() for i in got]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


def test_claim_uses_the_due_index(ddb: Database) -> None:
    """The plan of the very statement ``claim`` runs: the due index, in its order."""
    seed(ddb, ["a@example.test"])

    def plan(conn: sa.Connection) -> str:
        sqlite = conn.dialect.name == "sqlite"
        compiled = _CLAIM[not sqlite].compile(dialect=conn.dialect)
        values = compiled.construct_params(
            {"now": T0, "until": T0 + timedelta(seconds=300), "owner": "x", "limit": 200}
        )
        if sqlite:
            args = tuple(
                v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                for v in (values[name] for name in compiled.positiontup or ())
            )
            explain = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)
            return " ".join(str(r[-1]) for r in explain)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: force the choice
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        return " ".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {compiled}", values))

    text = ddb.read_sync(plan)
    assert "ix_delivery_queue_due" in text, text
    assert "TEMP B-TREE" not in text, text  # SQLite: no sort, the index gives the order
    assert " Sort " not in f" {text} ", text  # PostgreSQL: likewise
