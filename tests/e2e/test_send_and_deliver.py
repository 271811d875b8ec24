"""The whole story over real sockets: HTTP send → store → MX lookup on a loopback DNS server →
SMTP to a sink → the email log says what the sink answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mailpulse.store.tables import messages
from tests.api.test_send import mail, send
from tests.support.dnsserver import DnsServer
from tests.support.server import RunningServer, Tenant, running_server
from tests.support.smtpsink import SmtpSink, free_port


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[RunningServer, SmtpSink]]:
    port = free_port("127.0.0.2")
    with (
        DnsServer() as dns,
        SmtpSink("127.0.0.2", port, behaviour={"gone@example.org": "550"}) as sink,
    ):
        dns.set("example.org", ("MX", (10, "mx.example.org")))
        dns.set("mx.example.org", ("A", "127.0.0.2"))
        with running_server(
            f"sqlite:///{tmp_path / 'e2e.db'}",
            tmp_path,
            deliver=True,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            ehlo_name="mailpulse.test",
            allow_private_mx=True,  # the sink is on loopback
            # the stored bytes exactly, one transaction for the domain's recipients (copies
            # with List-Unsubscribe headers: tests/e2e/test_suppression.py)
            list_unsubscribe=False,
        ) as server:
            yield server, sink


def wait_for_records(server: RunningServer, tenant: Tenant, ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    with server.client() as http:
        while True:
            records = http.post(
                "/smtp/emails/info", headers=tenant.auth, json={"emails": ids}
            ).json()
            if all(r["status"] in ("delivered", "bounced") for r in records):
                return list(records)
            if time.monotonic() > deadline:
                raise AssertionError(f"not final in time: {records}")
            time.sleep(0.05)


def test_an_accepted_email_is_delivered_byte_for_byte_and_logged(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    server, sink = world
    tenant = server.tenant()
    payload = mail(
        tenant,
        to=[{"email": "rita@example.org"}, {"email": "gone@example.org"}],
        bcc=[{"email": "boss@example.org"}],
    )
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 200
    with server.client() as http:
        listed = http.get("/smtp/emails", headers=tenant.auth).json()
    ids = [r["id"] for r in listed]
    records = {r["recipient"]: r for r in wait_for_records(server, tenant, ids)}

    delivered = records["rita@example.org"]
    assert delivered["status"] == "delivered"
    assert delivered["smtp_answer_code"] == 250
    assert delivered["smtp_answer_subcode"] == "2.0.0"
    assert delivered["used_ip"] == "127.0.0.1"
    assert records["boss@example.org"]["status"] == "delivered"
    bounced = records["gone@example.org"]
    assert bounced["status"] == "bounced"
    assert bounced["smtp_answer_code"] == 550
    assert bounced["smtp_answer_subcode"] == "5.1.1"

    raw = server.runtime.db.read_sync(lambda c: c.execute(sa.select(messages.c.raw)).scalar_one())
    received = [m for m in sink.messages if "rita@example.org" in m.rcpt_tos]
    assert len(received) == 1
    assert received[0].data == raw
    # the envelope sender is the delivery's own VERP return path; the From header the sender's
    rita = server.runtime.links.verify("bounce", received[0].mail_from[7:].split("@")[0])
    assert received[0].mail_from.startswith("bounce+")
    assert rita == (delivered["id"],)
    assert received[0].rcpt_tos == ("rita@example.org",)
    headers = received[0].data.split(b"\r\n\r\n")[0]
    assert any(
        line.startswith(b"From:") and tenant.sender.encode() in line
        for line in headers.split(b"\r\n")
    )
    (boss,) = [m for m in sink.messages if "boss@example.org" in m.rcpt_tos]
    assert boss.rcpt_tos == ("boss@example.org",)
    assert boss.data == raw
    assert b"boss@example.org" not in boss.data


def test_an_internationalised_domain_is_stored_and_sent_as_a_labels(tmp_path: Path) -> None:
    """``user@bücher.de`` to a server without SMTPUTF8, beside ASCII co-recipients: every one
    is delivered, the IDN as ``user@xn--bcher-kva.de``; non-ASCII local parts stay refused."""
    port = free_port("127.0.0.2")
    with (
        DnsServer() as dns,
        SmtpSink("127.0.0.2", port, smtputf8=False) as sink,
    ):
        for domain in ("xn--bcher-kva.de", "example.org"):
            dns.set(domain, ("MX", (10, f"mx.{domain}")))
            dns.set(f"mx.{domain}", ("A", "127.0.0.2"))
        with running_server(
            f"sqlite:///{tmp_path / 'idn.db'}",
            tmp_path,
            deliver=True,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            allow_private_mx=True,
            list_unsubscribe=False,
        ) as server:
            tenant = server.tenant()
            payload = mail(
                tenant,
                to=[{"email": "user@bücher.de"}, {"email": "rita@example.org"}],
                cc=[{"email": "other@BÜCHER.de"}],
            )
            assert send(server, tenant, {"email": payload}).status_code == 200
            refused = send(
                server, tenant, {"email": mail(tenant, to=[{"email": "jörg@example.org"}])}
            )
            assert refused.status_code == 422
            with server.client() as http:
                listed = http.get("/smtp/emails", headers=tenant.auth).json()
            records = {
                r["recipient"]: r
                for r in wait_for_records(server, tenant, [r["id"] for r in listed])
            }
    assert {r: rec["status"] for r, rec in records.items()} == {
        "user@xn--bcher-kva.de": "delivered",
        "other@xn--bcher-kva.de": "delivered",
        "rita@example.org": "delivered",
    }
    got = sorted(r for m in sink.messages for r in m.rcpt_tos)
    assert got == ["other@xn--bcher-kva.de", "rita@example.org", "user@xn--bcher-kva.de"]
