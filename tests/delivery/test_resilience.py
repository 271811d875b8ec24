"""Nothing goes wrong silently: internationalised addresses, unexpected errors, and the one log
line each delivery decision leaves."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from datetime import timedelta
from typing import Any

import pytest

from mailpulse.core.clock import FixedClock
from mailpulse.delivery.session import Session, Transaction
from mailpulse.delivery.worker import DeliveryWorker
from mailpulse.store.db import Database
from mailpulse.store.tables import delivery_attempts, events
from tests.delivery.helpers import RAW, T0, delivery, make_settings, rows, seed
from tests.support.dnsserver import DnsServer
from tests.support.smtpsink import SmtpSink


def worker(db: Database, dns: DnsServer, port: int, clock: FixedClock, **settings: Any):
    return DeliveryWorker(
        db,
        make_settings(dns, port, **settings),
        clock=clock,
        owner="w-test",
        rng=random.Random(1),
        poll_interval=0.05,
    )


async def idle(w: DeliveryWorker) -> None:
    """Run until idle; a worker that never gets there (mail claimed again forever) fails."""
    await asyncio.wait_for(w.run_until_idle(), timeout=30)


def mx(dns: DnsServer, domain: str, ip: str = "127.0.0.2") -> None:
    dns.set(domain, ("MX", (10, f"mx.{domain}")))
    dns.set(f"mx.{domain}", ("A", ip))


async def test_a_unicode_domain_is_sent_as_a_labels_beside_its_co_recipients(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    """A row stored before domains were stored as A-labels: the session converts it (the sink
    offers no SMTPUTF8) and its co-recipient is delivered too (each in its own transaction:
    every recipient has its own VERP return path)."""
    mx(dns, "xn--bcher-kva.de")
    seed(sdb, ["user@bücher.de", "other@xn--bcher-kva.de"])
    with SmtpSink("127.0.0.2", mx_port, smtputf8=False) as sink:
        await idle(worker(sdb, dns, mx_port, clock))
    assert sorted(m.rcpt_tos for m in sink.messages) == [
        ("other@xn--bcher-kva.de",),
        ("user@xn--bcher-kva.de",),
    ]
    assert all(m.data == RAW for m in sink.messages)
    for recipient in ("user@bücher.de", "other@xn--bcher-kva.de"):
        row = delivery(sdb, recipient)
        assert (row.status, row.attempts, row.smtp_answer_code) == ("delivered", 1, 250)


async def test_a_non_ascii_local_part_without_smtputf8_bounces_alone(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test")
    seed(sdb, ["jörg@example.test", "ok@example.test"])
    with SmtpSink("127.0.0.2", mx_port, smtputf8=False) as sink:
        await idle(worker(sdb, dns, mx_port, clock))
    assert [m.rcpt_tos for m in sink.messages] == [("ok@example.test",)]
    assert delivery(sdb, "ok@example.test").status == "delivered"
    bad = delivery(sdb, "jörg@example.test")
    assert (bad.status, bad.smtp_answer_code, bad.smtp_answer_subcode) == ("bounced", 553, "5.6.7")
    assert "needs SMTPUTF8" in bad.smtp_answer_data


async def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_offered(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "xn--bcher-kva.de")
    seed(sdb, ["jörg@bücher.de", "ok@xn--bcher-kva.de"])
    with SmtpSink("127.0.0.2", mx_port, smtputf8=True) as sink:
        await idle(worker(sdb, dns, mx_port, clock))
    assert sorted(m.rcpt_tos for m in sink.messages) == [
        ("jörg@xn--bcher-kva.de",),
        ("ok@xn--bcher-kva.de",),
    ]
    assert delivery(sdb, "jörg@bücher.de").status == "delivered"


async def test_an_unexpected_error_is_a_recorded_deferral_and_bounces_after_five(
    sdb: Database,
    dns: DnsServer,
    mx_port: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mx(dns, "example.test")
    doomed = seed(sdb, ["doomed@example.test"])
    seed(sdb, ["fine@example.test"], account_id=doomed.account_id)
    real_send = Session.send

    async def send(self: Session, tx: Transaction) -> Any:
        if tx.message.id == doomed.message_id:
            raise RuntimeError("boom")
        return await real_send(self, tx)

    monkeypatch.setattr(Session, "send", send)
    now = T0
    with SmtpSink("127.0.0.2", mx_port) as sink:
        for attempt in range(1, 6):
            clock = FixedClock(now)
            with caplog.at_level(logging.INFO, logger="mailpulse.delivery.worker"):
                await idle(worker(sdb, dns, mx_port, clock))
            row = delivery(sdb, "doomed@example.test")
            assert row.attempts == attempt
            if attempt < 5:
                assert (row.status, row.bounce_category) == ("deferred", "internal")
                assert row.smtp_answer_data == "internal error: RuntimeError: boom"
                assert row.next_attempt_at > now
                now = row.next_attempt_at + timedelta(seconds=1)
    # the other message, to the same destination in the same run, went through at once
    assert [m.rcpt_tos for m in sink.messages] == [("fine@example.test",)]
    assert delivery(sdb, "fine@example.test").attempts == 1
    row = delivery(sdb, "doomed@example.test")
    assert (row.status, row.bounce_category, row.smtp_answer_subcode) == (
        "bounced",
        "internal",
        "5.3.0",
    )
    assert row.smtp_answer_data == (
        "gave up after 5 identical failures: internal error: RuntimeError: boom"
    )
    attempts = rows(sdb, delivery_attempts, delivery_id=row.id)
    assert [a.outcome for a in attempts] == ["deferred"] * 4 + ["bounced"]
    assert [e.type for e in rows(sdb, events, delivery_id=row.id)] == ["soft_bounce"]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("delivery ")]
    assert re.fullmatch(
        rf"delivery {row.public_id} to example.test: deferred 4\.3\.0 "
        r"\(internal error: RuntimeError: boom\), retry in \d+s",
        said[0],
    )
    assert said[-1] == (
        f"delivery {row.public_id} to example.test: bounced 5.3.0 "
        "(gave up after 5 identical failures: internal error: RuntimeError: boom); "
        "internal: not suppressed (our failure, not the address)"
    )


async def test_each_decision_leaves_one_info_line(
    sdb: Database,
    dns: DnsServer,
    mx_port: int,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mx(dns, "example.test")
    seeded = seed(sdb, ["ok@example.test", "later@example.test", "gone@example.test"])
    behaviour = {"later@example.test": "451", "gone@example.test": "550"}
    with (
        SmtpSink("127.0.0.2", mx_port, behaviour=behaviour),
        caplog.at_level(logging.INFO, logger="mailpulse.delivery.worker"),
    ):
        await idle(worker(sdb, dns, mx_port, clock))
    lines = sorted(
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.getMessage().startswith("delivery ")
    )
    ids = {
        r: delivery(sdb, r).public_id
        for r in ("ok@example.test", "later@example.test", "gone@example.test")
    }
    assert len(lines) == len(seeded.delivery_ids)
    expected = {
        "ok@example.test": r"delivered 250 2\.0\.0 \(2\.0\.0 Ok: queued as X\)",
        "later@example.test": r"deferred 451 4\.3\.0 \(4\.3\.0 Temporary local problem, try "
        r"again later\), retry in \d+s",
        "gone@example.test": r"bounced 550 5\.1\.1 \(5\.1\.1 <gone@example\.test>: Recipient "
        r"address rejected: User unknown\); bad mailbox: address suppressed",
    }
    for recipient, pattern in expected.items():
        prefix = rf"delivery {ids[recipient]} to example\.test: "
        assert sum(bool(re.fullmatch(prefix + pattern, line)) for line in lines) == 1, lines


async def test_an_mx_on_loopback_bounces_when_private_mx_is_not_allowed(
    sdb: Database, dns: DnsServer, mx_port: int, clock: FixedClock
) -> None:
    mx(dns, "example.test")
    seed(sdb, ["a@example.test"])
    with SmtpSink("127.0.0.2", mx_port) as sink:
        await idle(worker(sdb, dns, mx_port, clock, allow_private_mx=False))
    assert sink.connections == 0 and sink.messages == []
    row = delivery(sdb, "a@example.test")
    # refusing a private MX is our own rule, not proof the domain takes no mail: not hard
    assert (row.status, row.bounce_category, row.smtp_answer_subcode) == (
        "bounced",
        "policy",
        "5.4.4",
    )
    assert row.smtp_answer_data == (
        "refused to deliver to the MX of example.test: "
        "mx.example.test [127.0.0.2] is a loopback address"
    )
