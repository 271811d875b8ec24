"""Synchronous bounces over real sockets: HTTP send → MX on a loopback DNS server → an SMTP sink
that refuses some recipients → GET /smtp/bounces/day lists them, and only the bounces that blame
the address put it on the account's suppression list. On each engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mailpulse.core.clock import FixedClock
from mailpulse.store import suppression
from mailpulse.store.tables import bounces, deliveries
from tests.api.test_send import mail, send
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.dnsserver import DnsServer
from tests.support.server import RunningServer, Tenant, running_server
from tests.support.smtpsink import SmtpSink, free_port

T0 = datetime(2030, 6, 15, 9, 30, 0)
GONE = "gone@example.org"
BLOCKED = "blocked@example.org"
SPAMHAUS = (
    "550 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using Spamhaus; "
    "see https://www.spamhaus.org/query/ip/127.0.0.1"
)
UNKNOWN_FOR_NOW = (
    "450 4.1.1 <later@example.org>: Recipient address rejected: User unknown in local "
    "recipient table"
)
BUSY = "451 4.3.0 Temporary local problem, try again later"
BEHAVIOUR = {
    GONE: "550",  # 550 5.1.1 <…>: Recipient address rejected: User unknown
    BLOCKED: SPAMHAUS,
    "later@example.org": UNKNOWN_FOR_NOW,
    "busy@example.org": BUSY,
}


@contextmanager
def world(
    engine: str, tmp_path: Path, clock: FixedClock, **settings: Any
) -> Iterator[tuple[RunningServer, SmtpSink]]:
    port = free_port("127.0.0.2")
    with (
        fresh_database_url(engine, tmp_path) as url,
        DnsServer() as dns,
        SmtpSink("127.0.0.2", port, behaviour=BEHAVIOUR) as sink,
    ):
        dns.set("example.org", ("MX", (10, "mx.example.org")))
        dns.set("mx.example.org", ("A", "127.0.0.2"))
        dns.set("nullmx.example", ("MX", (0, ".")))  # RFC 7505: takes no mail
        with running_server(
            url,
            tmp_path / "var",
            clock,
            deliver=True,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            ehlo_name="mailpulse.test",
            allow_private_mx=True,  # the sink is on loopback
            **settings,
        ) as server:
            yield server, sink


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tenant_of(server: RunningServer, name: str, sender: str) -> Tenant:
    tenant = server.tenant(name, sender=sender)
    tenant.token = server.api_key(tenant)[1]  # a static key does not expire with the clock
    return tenant


def sent(server: RunningServer, tenant: Tenant, *recipients: str, subject: str = "Hi") -> None:
    payload = mail(tenant, subject=subject, to=[{"email": r} for r in recipients])
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 200, answer.text


def states(server: RunningServer) -> dict[str, tuple[str, int]]:
    def query(conn: sa.Connection) -> dict[str, tuple[str, int]]:
        rows = conn.execute(
            sa.select(deliveries.c.recipient, deliveries.c.status, deliveries.c.attempts)
        )
        return {row.recipient: (row.status, row.attempts) for row in rows}

    return server.runtime.db.read_sync(query)


def wait_until(server: RunningServer, done: Any, what: str) -> dict[str, tuple[str, int]]:
    deadline = time.monotonic() + 30
    while True:
        now = states(server)
        if done(now):
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {now}")
        time.sleep(0.05)


def final(server: RunningServer) -> None:
    """Wait until every delivery of every tenant is delivered or bounced."""
    deadline = time.monotonic() + 30
    query = sa.select(sa.func.count()).where(deliveries.c.status.not_in(["delivered", "bounced"]))
    while server.runtime.db.read_sync(lambda conn: conn.execute(query).scalar_one()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not final in time: {states(server)}")
        time.sleep(0.05)


def suppressed(server: RunningServer, tenant: Tenant, *emails: str) -> set[str]:
    return server.runtime.db.read_sync(
        lambda conn: suppression.suppressed_among(conn, tenant.id, emails)
    )


def day(server: RunningServer, tenant: Tenant, **query: Any) -> Any:
    with server.client() as http:
        answer = http.get("/smtp/bounces/day", params=query, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def total(server: RunningServer, tenant: Tenant, **query: Any) -> int:
    with server.client() as http:
        answer = http.get("/smtp/bounces/day/total", params=query, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["total"]
    return int(body["total"])


def test_a_bad_mailbox_is_listed_and_suppressed_a_blocklisting_is_listed_only(
    engine: str, tmp_path: Path
) -> None:
    clock = FixedClock(T0)
    with world(engine, tmp_path, clock) as (server, sink):
        acme = tenant_of(server, "acme", "news@acme.example")
        other = tenant_of(server, "other", "hello@other.example")
        sent(server, acme, "rita@example.org", "Gone@Example.org", BLOCKED, subject="Spring sale")
        sent(server, other, "rita@example.org")  # delivered: the other tenant has no bounce
        sent(server, acme, "x@nowhere.example", "y@nullmx.example")  # NXDOMAIN, null MX
        final(server)

        listed = day(server, acme)
        assert (listed["total"], listed["found"], listed["request_limit"]) == (4, 4, 100)
        by_address = {entry["email_to"]: entry for entry in listed["emails"]}
        assert by_address[GONE] == {
            "email_to": GONE,
            "sender": "news@acme.example",
            "send_date": "2030-06-15 09:30:00",
            "subject": "Spring sale",
            "smtp_answer_code": 550,
            "smtp_answer_subcode": "5.1.1",
            "smtp_answer_data": f"5.1.1 <{GONE}>: Recipient address rejected: User unknown",
        }
        assert by_address[BLOCKED]["smtp_answer_code"] == 550
        assert by_address[BLOCKED]["smtp_answer_subcode"] == "5.7.1"
        assert "blocked using Spamhaus" in by_address[BLOCKED]["smtp_answer_data"]

        # domains that take no mail, found by the routing, bounce as 550 and suppress too
        nxdomain, null_mx = by_address["x@nowhere.example"], by_address["y@nullmx.example"]
        assert (nxdomain["smtp_answer_code"], nxdomain["smtp_answer_subcode"]) == (550, "5.1.2")
        assert (null_mx["smtp_answer_code"], null_mx["smtp_answer_subcode"]) == (550, "5.1.10")
        assert "NXDOMAIN" in nxdomain["smtp_answer_data"]

        # the bad mailbox is suppressed; the blocklisting said nothing about the address
        everyone = (GONE, BLOCKED, "rita@example.org", "x@nowhere.example", "y@nullmx.example")
        assert suppressed(server, acme, *everyone) == {
            GONE,
            "x@nowhere.example",
            "y@nullmx.example",
        }
        # one tenant's bounces are another's nothing
        assert suppressed(server, other, GONE, BLOCKED) == set()
        assert day(server, other) == {"total": 0, "emails": [], "request_limit": 100, "found": 0}
        assert total(server, other) == 0
        assert total(server, acme) == 4

        # the list row says what was decided, in the delivery's own transaction
        rows = server.runtime.db.read_sync(
            lambda conn: conn.execute(
                sa.select(bounces.c.email_to, bounces.c.category, bounces.c.suppressed)
            ).all()
        )
        assert sorted(tuple(row) for row in rows) == [
            (BLOCKED, "policy", False),
            (GONE, "bad_mailbox", True),
            ("x@nowhere.example", "bad_domain", True),
            ("y@nullmx.example", "bad_domain", True),
        ]
    assert len(sink.received_by("rita@example.org")) == 2


def test_the_day_is_the_24_hours_before_now_or_the_date_asked(engine: str, tmp_path: Path) -> None:
    clock = FixedClock(T0)
    with world(engine, tmp_path, clock) as (server, _sink):
        acme = tenant_of(server, "acme", "news@acme.example")
        sent(server, acme, GONE)
        final(server)
        clock.advance(hours=20)
        sent(server, acme, BLOCKED)
        final(server)
        assert [e["email_to"] for e in day(server, acme)["emails"]] == [BLOCKED, GONE]

        clock.advance(hours=5)  # the first bounce is now 25 hours old
        assert [e["email_to"] for e in day(server, acme)["emails"]] == [BLOCKED]
        assert total(server, acme) == 1
        assert [e["email_to"] for e in day(server, acme, date="2030-06-15")["emails"]] == [GONE]
        assert [e["email_to"] for e in day(server, acme, date="2030-06-16")["emails"]] == [BLOCKED]
        assert total(server, acme, date="2030-06-15") == 1
        assert day(server, acme, date="2030-06-17")["total"] == 0

        page = day(server, acme, date="", limit=1, offset=0)
        assert (page["total"], page["found"], page["request_limit"]) == (1, 1, 1)
        both = day(server, acme, date="2030-06-15 12:00:00", limit=0)  # a datetime: its day
        assert [e["email_to"] for e in both["emails"]] == [GONE]
        assert day(server, acme, date="2030-06-15", offset=1)["emails"] == []
        assert day(server, acme, limit=100_000)["request_limit"] == 500

        with server.client() as http:
            # a JSON body on the GET, as the Node SDK sends
            node = http.request(
                "GET", "/smtp/bounces/day", json={"date": "2030-06-15"}, headers=acme.auth
            )
            bad_date = http.get(
                "/smtp/bounces/day", params={"date": "yesterday"}, headers=acme.auth
            )
            bad_total = http.get(
                "/smtp/bounces/day/total", params={"date": "2030-13-01"}, headers=acme.auth
            )
            bad_limit = http.get("/smtp/bounces/day", params={"limit": "-1"}, headers=acme.auth)
            anonymous = http.get("/smtp/bounces/day")
        assert [e["email_to"] for e in node.json()["emails"]] == [GONE]
        for answer in (bad_date, bad_total):
            assert answer.status_code == 400
            assert answer.json() == {"error_code": 799, "message": "Wrong date format"}
        assert bad_limit.status_code == 422
        assert bad_limit.json() == {"error_code": 422, "message": "Argument limit is invalid"}
        assert anonymous.status_code == 401


def test_an_expiry_suppresses_only_when_every_answer_blamed_the_address(
    engine: str, tmp_path: Path
) -> None:
    """The retry window (10 minutes here) runs out on the injected clock: the recipient whose
    server said "4.1.1 User unknown" at every attempt is suppressed; the one that was
    only ever "busy" is listed as expired and not suppressed."""
    clock = FixedClock(T0)
    later, busy = "later@example.org", "busy@example.org"
    with world(engine, tmp_path, clock, retry_window_seconds=600) as (server, _sink):
        acme = tenant_of(server, "acme", "news@acme.example")
        sent(server, acme, later, busy)
        seen = wait_until(server, lambda s: s.get(later, ("", 0))[1] >= 1, "no first attempt")
        while seen[later][0] != "bounced" or seen[busy][0] != "bounced":
            attempts = min(seen[later][1], seen[busy][1])
            clock.advance(minutes=5)  # past each retry (1, then 2 minutes ± 20 %), then the window
            seen = wait_until(
                server,
                lambda s, n=attempts: min(s[later][1], s[busy][1]) > n,
                "no retry after the clock moved",
            )
        assert seen[later][1] >= 3 and seen[busy][1] >= 3

        listed = {e["email_to"]: e for e in day(server, acme)["emails"]}
        assert set(listed) == {later, busy}
        for entry in listed.values():
            assert (entry["smtp_answer_code"], entry["smtp_answer_subcode"]) == (554, "5.4.7")
            assert entry["smtp_answer_data"].startswith("expired after ")
        assert "4.1.1" in listed[later]["smtp_answer_data"]
        assert suppressed(server, acme, later, busy) == {later}
        categories = server.runtime.db.read_sync(
            lambda conn: dict(conn.execute(sa.select(bounces.c.email_to, bounces.c.category)).all())
        )
        assert categories == {later: "expired_bad_address", busy: "expired"}
