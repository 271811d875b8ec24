"""End to end: a real SQLite/PostgreSQL queue, real DNS over UDP, real SMTP over sockets."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailpulse.core.clock import FixedClock
from mailpulse.delivery.personalise import Personaliser
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.store.db import Database
from mailpulse.store.tables import delivery_attempts, events
from tests.delivery.helpers import RAW, T0, delivery, make_settings, return_path, rows, seed
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import SmtpSink, self_signed_context


def mx(dns: DnsServer, domain: str, *hosts: tuple[int, str, str]) -> None:
    """Publish MX records for ``domain``: (preference, host name, IPv4)."""
    dns.set(domain, *[("MX", (pref, host)) for pref, host, _ in hosts])
    for _, host, ip in hosts:
        dns.set(host, ("A", ip))


def worker(db: Database, dns: DnsServer, port: int, clock: FixedClock, **settings: object):
    return DeliveryWorker(
        db,
        make_settings(dns, port, **settings),
        clock=clock,
        owner="w-test",
        rng=random.Random(1),
        poll_interval=0.05,
    )


async def test_delivers_exact_bytes_and_records_the_answer(
    ddb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seeded = seed(ddb, ["alice@example.test", "bob@Example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await worker(ddb, dns, mx_port, clock).run_until_idle()
    # one transaction per recipient, each with its own VERP return path (the stored envelope
    # sender is not used), the stored bytes exactly (no trace header added), one connection
    assert len(sink.messages) == 2
    for recipient in ("alice@example.test", "bob@Example.test"):
        (got,) = sink.received_by(recipient)
        assert got.rcpt_tos == (recipient,)
        assert got.mail_from == return_path(ddb, recipient)
        assert got.mail_from.startswith("bounce+")
        assert got.mail_from.endswith("@bounces.mailpulse.test")
        assert got.data == RAW
    assert sink.ehlo_names == ["out.mailpulse.test"]
    for recipient in ("alice@example.test", "bob@Example.test"):
        row = delivery(ddb, recipient)
        assert row.status == "delivered"
        assert row.smtp_answer_code == 250
        assert row.smtp_answer_subcode == "2.0.0"
        assert row.smtp_answer_data == "2.0.0 Ok: queued as X"
        assert row.used_ip == "127.0.0.1"
        assert row.send_date == T0
        assert row.attempts == 1
        assert row.lease_owner is None and row.lease_until is None
        assert row.next_attempt_at is None
    attempts = rows(ddb, delivery_attempts)
    assert [(a.host, a.code, a.outcome) for a in attempts] == [
        ("mx.example.test", 250, "delivered")
    ] * 2
    evs = rows(ddb, events)
    assert sorted(e.delivery_id for e in evs) == seeded.delivery_ids
    assert {e.type for e in evs} == {"delivered"}
    assert json.loads(evs[0].data)["smtp_answer_code"] == 250


async def test_replies_per_recipient(
    ddb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    behaviour = {
        "ok@example.test": "250",
        "unknown@example.test": "550",
        "later@example.test": "451",
        "full@example.test": "452",
    }
    for recipient in behaviour:
        seed(ddb, [recipient])  # one message each
    seed(ddb, ["closing@example.test"])
    seed(ddb, ["dropper@example.test"])
    behaviour.update({"closing@example.test": "421", "dropper@example.test": "drop"})
    with SmtpSink("127.0.0.2", mx_port, behaviour=behaviour) as sink:
        await worker(ddb, dns, mx_port, clock).run_until_idle()
    assert [m.rcpt_tos for m in sink.messages] == [("ok@example.test",)]

    ok = delivery(ddb, "ok@example.test")
    assert (ok.status, ok.smtp_answer_code) == ("delivered", 250)

    unknown = delivery(ddb, "unknown@example.test")
    assert unknown.status == "bounced"
    assert unknown.bounce_category == "bad_mailbox"
    assert (unknown.smtp_answer_code, unknown.smtp_answer_subcode) == (550, "5.1.1")
    assert "User unknown" in unknown.smtp_answer_data
    assert unknown.send_date == T0

    for recipient, code, subcode in [
        ("later@example.test", 451, "4.3.0"),
        ("full@example.test", 452, "4.2.2"),
        ("closing@example.test", 421, "4.3.2"),
    ]:
        row = delivery(ddb, recipient)
        assert row.status == "deferred", recipient
        assert (row.smtp_answer_code, row.smtp_answer_subcode) == (code, subcode)
        # first retry about a minute later (jitter ±20 %)
        assert timedelta(seconds=48) <= row.next_attempt_at - T0 <= timedelta(seconds=72)
        assert row.attempts == 1
        assert row.lease_owner is None

    dropped = delivery(ddb, "dropper@example.test")
    assert dropped.status == "deferred"
    assert dropped.smtp_answer_code is None
    assert "lost" in dropped.smtp_answer_data
    assert timedelta(seconds=48) <= dropped.next_attempt_at - T0 <= timedelta(seconds=72)

    attempts = {a.delivery_id: a for a in rows(ddb, delivery_attempts)}
    assert len(attempts) == 6
    assert attempts[dropped.id].outcome == "deferred"
    assert attempts[unknown.id].outcome == "bounced"
    evs = {e.delivery_id: e.type for e in rows(ddb, events)}
    assert evs == {ok.id: "delivered", unknown.id: "hard_bounce"}


async def test_failures_at_mail_from_and_data_fail_every_recipient(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seed(sdb, ["a@example.test", "b@example.test"], envelope_from="blocked@mailpulse.test")
    seed(sdb, ["c@example.test", "spam@example.test"])
    seed(sdb, ["d@example.test"])
    with SmtpSink(
        "127.0.0.2",
        mx_port,
        behaviour={"spam@example.test": "data554"},
        sender_behaviour={"blocked@mailpulse.test": "550"},
    ) as sink:
        # without personalise steps (no VERP), a transaction carries all a message's
        # recipients: what one of them hears at MAIL FROM or DATA, they all hear
        unpersonalised = DeliveryWorker(
            sdb,
            make_settings(dns, mx_port),
            clock=clock,
            owner="w-test",
            rng=random.Random(1),
            poll_interval=0.05,
            personaliser=Personaliser(),
        )
        await unpersonalised.run_until_idle()
    assert [m.rcpt_tos for m in sink.messages] == [("d@example.test",)]
    for recipient in ("a@example.test", "b@example.test"):
        row = delivery(sdb, recipient)
        assert (row.status, row.smtp_answer_code, row.bounce_category) == (
            "bounced",
            550,
            "policy",
        )
    for recipient in ("c@example.test", "spam@example.test"):
        row = delivery(sdb, recipient)
        assert (row.status, row.smtp_answer_code, row.smtp_answer_subcode) == (
            "bounced",
            554,
            "5.7.1",
        )
        assert row.bounce_category == "spam_content"
    assert delivery(sdb, "d@example.test").status == "delivered"
    # the session survived the failed transactions (RSET) and carried the next one
    assert sink.connections == 1


async def test_null_mx_and_missing_domain_bounce_and_a_fallback_delivers(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    dns.set("nullmx.test", ("MX", (0, ".")))
    dns.set("plain.test", ("A", "127.0.0.3"))  # no MX: the domain's own address
    seed(sdb, ["x@nullmx.test", "y@nowhere.test", "z@plain.test"])
    with SmtpSink("127.0.0.3", mx_port) as sink:
        await worker(sdb, dns, mx_port, clock).run_until_idle()
    null = delivery(sdb, "x@nullmx.test")
    assert (null.status, null.bounce_category, null.smtp_answer_subcode) == (
        "bounced",
        "bad_domain",
        "5.1.10",
    )
    missing = delivery(sdb, "y@nowhere.test")
    assert (missing.status, missing.bounce_category, missing.smtp_answer_subcode) == (
        "bounced",
        "bad_domain",
        "5.1.2",
    )
    assert "NXDOMAIN" in missing.smtp_answer_data
    plain = delivery(sdb, "z@plain.test")
    assert plain.status == "delivered"
    assert [m.rcpt_tos for m in sink.messages] == [("z@plain.test",)]
    assert {e.type for e in rows(sdb, events)} == {"delivered", "hard_bounce"}


async def test_tries_mx_hosts_in_order_and_ipv6_before_ipv4(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    # The preferred MX listens nowhere (IPv6 ::1 and 127.0.0.4 refuse); the next one works.
    dns.set("example.test", ("MX", (5, "dead.example.test")), ("MX", (10, "mx.example.test")))
    dns.set("dead.example.test", ("AAAA", "::1"), ("A", "127.0.0.4"))
    dns.set("mx.example.test", ("A", "127.0.0.2"))
    seed(sdb, ["a@example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await worker(sdb, dns, mx_port, clock).run_until_idle()
    assert len(sink.messages) == 1
    row = delivery(sdb, "a@example.test")
    assert row.status == "delivered"
    (attempt,) = rows(sdb, delivery_attempts)
    assert attempt.host == "mx.example.test"


async def test_unreachable_destination_defers(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.5"))  # nothing listens
    seed(sdb, ["a@example.test", "b@example.test"])
    await worker(sdb, dns, mx_port, clock).run_until_idle()
    for row in rows(sdb):
        assert row.status == "deferred"
        assert row.smtp_answer_code is None
        assert "127.0.0.5" in row.smtp_answer_data
    assert len(rows(sdb, delivery_attempts)) == 2


async def test_many_messages_to_one_domain_share_few_connections(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    for i in range(30):
        seed(sdb, [f"user{i}@example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await worker(
            sdb, dns, mx_port, clock, sessions_per_destination=1, messages_per_session=10
        ).run_until_idle()
    assert len(sink.messages) == 30
    assert sink.connections == 3  # 30 messages, 10 per session, one session at a time
    assert len({m.session_id for m in sink.messages}) == 3
    assert {r.status for r in rows(sdb)} == {"delivered"}


async def test_default_limits_reuse_connections(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    for i in range(40):
        seed(sdb, [f"user{i}@example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await worker(sdb, dns, mx_port, clock, claim_batch=200).run_until_idle()
    assert len(sink.messages) == 40
    assert sink.connections <= 4  # one session per 10 waiting messages at most


async def test_relay_with_auth(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    seed(sdb, ["a@one.test", "b@two.test"])  # no DNS for these: the relay takes everything
    with SmtpSink("127.0.0.6", mx_port, credentials=("relayuser", "p@ss:word")) as sink:
        await worker(
            sdb, dns, mx_port, clock, relay=f"smtp://relayuser:p%40ss%3Aword@127.0.0.6:{mx_port}"
        ).run_until_idle()
    assert sink.auth_attempts == [("relayuser", "p@ss:word")]
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == ["a@one.test", "b@two.test"]
    assert all(m.data == RAW for m in sink.messages)
    assert sink.connections == 1
    assert {r.status for r in rows(sdb)} == {"delivered"}
    assert {a.host for a in rows(sdb, delivery_attempts)} == {"127.0.0.6"}


async def test_relay_refusing_our_credentials_defers(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    seed(sdb, ["a@one.test"])
    with SmtpSink("127.0.0.6", mx_port, credentials=("relayuser", "right")) as sink:
        await worker(
            sdb, dns, mx_port, clock, relay=f"smtp://relayuser:wrong@127.0.0.6:{mx_port}"
        ).run_until_idle()
    assert sink.messages == []
    row = delivery(sdb, "a@one.test")
    assert row.status == "deferred"
    assert row.smtp_answer_code == 535


async def test_expired_lease_of_a_dead_owner_is_claimed_again(
    ddb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seeded = seed(ddb, ["a@example.test", "b@example.test"])
    from mailpulse.store.tables import delivery_queue

    def lease(conn: sa.Connection, until: object, ids: list[int]) -> None:
        conn.execute(
            sa.update(delivery_queue)
            .where(delivery_queue.c.delivery_id.in_(ids))
            .values(lease_owner="dead", lease_until=until, next_attempt_at=until)
        )

    # a: the dead owner's lease ran out a second ago; b: still held by a live owner
    ddb.write_sync(lambda c: lease(c, T0 - timedelta(seconds=1), seeded.delivery_ids[:1]))
    ddb.write_sync(lambda c: lease(c, T0 + timedelta(seconds=60), seeded.delivery_ids[1:]))
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await worker(ddb, dns, mx_port, clock).run_until_idle()
    assert [m.rcpt_tos for m in sink.messages] == [("a@example.test",)]
    assert delivery(ddb, "a@example.test").status == "delivered"
    held = delivery(ddb, "b@example.test")
    assert (held.status, held.lease_owner) == ("queued", "dead")


async def test_two_workers_never_send_a_delivery_twice(
    database_url: str, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    mx(dns, "other.test", (10, "mx.other.test", "127.0.0.2"))
    # two handles on the same database, as two processes would have
    db1 = Database(database_url, synchronous="NORMAL")
    db2 = Database(database_url, synchronous="NORMAL")
    try:
        for i in range(100):
            seed(db1, [f"u{i}@example.test", f"u{i}@other.test"])
        settings = {"claim_batch": 20}
        w1 = DeliveryWorker(db1, make_settings(dns, mx_port, **settings), clock=clock, owner="w1")
        w2 = DeliveryWorker(db2, make_settings(dns, mx_port, **settings), clock=clock, owner="w2")
        with SmtpSink("127.0.0.2", mx_port) as sink:
            await asyncio.gather(w1.run_until_idle(), w2.run_until_idle())
        received = [r for m in sink.messages for r in m.rcpt_tos]
        assert len(received) == 200
        assert len(set(received)) == 200
        assert {r.status for r in rows(db1)} == {"delivered"}
        assert len(rows(db1, delivery_attempts)) == 200
    finally:
        db1.close_sync()
        db2.close_sync()


async def test_stop_gives_back_unsent_claims(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seed(sdb, ["a@example.test"])
    with SmtpSink("127.0.0.2", mx_port, behaviour={"a@example.test": "stall"}) as sink:
        w = worker(sdb, dns, mx_port, clock, command_timeout=30.0)
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        assert await asyncio.to_thread(sink.wait_for, lambda: sink.stalled == 1)
        seed(sdb, ["b@example.test"])
        w.wake()
        stop.set()
        sink.unstall()
        await task
    # a was mid-transaction: it finished (the sink answered 451 after unstall, or 250);
    # b was never attempted: it is due again at once for any worker.
    b = delivery(sdb, "b@example.test")
    assert b.lease_owner is None or b.status == "delivered"
    assert delivery(sdb, "a@example.test").lease_owner is None


async def test_starttls_when_offered_and_source_address_is_used_ip(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, tmp_path
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seed(sdb, ["a@example.test"])
    context = self_signed_context(str(tmp_path))
    with SmtpSink("127.0.0.2", mx_port, tls_context=context) as sink:
        await worker(sdb, dns, mx_port, clock, source_addresses=["127.0.0.7"]).run_until_idle()
    (got,) = sink.messages
    assert got.tls  # opportunistic STARTTLS, self-signed certificate accepted
    assert got.peer == "127.0.0.7"
    assert got.data == RAW
    row = delivery(sdb, "a@example.test")
    assert (row.status, row.used_ip) == ("delivered", "127.0.0.7")


async def test_require_tls_defers_when_not_offered(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seed(sdb, ["a@example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await worker(sdb, dns, mx_port, clock, require_tls=True).run_until_idle()
    assert sink.messages == []
    row = delivery(sdb, "a@example.test")
    assert row.status == "deferred"
    assert "STARTTLS" in row.smtp_answer_data


@pytest.mark.parametrize(("idle", "connections"), [(5.0, 1), (0.0, 2)])
async def test_a_session_waits_briefly_for_more_mail_before_closing(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock, idle: float, connections: int
) -> None:
    mx(dns, "example.test", (10, "mx.example.test", "127.0.0.2"))
    seed(sdb, ["first@example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        running = worker(sdb, dns, mx_port, clock, session_idle_seconds=idle)
        stop = asyncio.Event()
        task = asyncio.create_task(running.run(stop))
        try:
            assert await asyncio.to_thread(sink.wait_for, lambda: len(sink.messages) == 1)
            await asyncio.sleep(0.3)  # the first session has run dry by now
            seed(sdb, ["second@example.test"])
            running.wake()
            assert await asyncio.to_thread(sink.wait_for, lambda: len(sink.messages) == 2)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)
    assert sink.connections == connections
