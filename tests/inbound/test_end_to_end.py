"""The whole loop over real sockets: a message sent through the API reaches an SMTP sink with
its own VERP return path; a report built from what arrived, mailed back to the bounce
receiver that `serve` runs, bounces that delivery in the API's log."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mailpulse.store.tables import bounces, suppressions
from tests.api.test_send import mail, send
from tests.inbound import reports
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.dnsserver import DnsServer
from tests.support.server import RunningServer, Tenant, running_server
from tests.support.smtpsink import SmtpSink, free_port

BOUNCE_DOMAIN = "bounces.example.test"


@pytest.fixture(params=ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, SmtpSink, int]]:
    port = free_port("127.0.0.2")
    bounce_port = free_port()
    with (
        fresh_database_url(request.param, tmp_path) as url,
        DnsServer() as dns,
        SmtpSink("127.0.0.2", port) as sink,
    ):
        dns.set("example.org", ("MX", (10, "mx.example.org")))
        dns.set("mx.example.org", ("A", "127.0.0.2"))
        with running_server(
            url,
            tmp_path / "var",
            deliver=True,
            bounces="own",
            bounce_domain=BOUNCE_DOMAIN,
            bounce_port=bounce_port,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            allow_private_mx=True,
        ) as server:
            yield server, sink, bounce_port


def info(server: RunningServer, tenant: Tenant, public_id: str) -> dict[str, Any]:
    with server.client() as http:
        answer = http.post("/smtp/emails/info", headers=tenant.auth, json={"emails": [public_id]})
    return dict(answer.json()[0])


def test_a_report_about_a_sent_message_bounces_it_in_the_log(
    world: tuple[RunningServer, SmtpSink, int],
) -> None:
    server, sink, bounce_port = world
    tenant = server.tenant()
    answer = send(server, tenant, {"email": mail(tenant)})
    public_id = answer.json()["id"]
    assert sink.wait_for(lambda: sink.received_by("rita@example.org"))
    (arrived,) = sink.received_by("rita@example.org")

    # MAIL FROM is this delivery's own signed return path at the bounce domain
    local, _, domain = arrived.mail_from.partition("@")
    assert domain == BOUNCE_DOMAIN
    assert local.startswith("bounce+")
    assert server.runtime.links.verify("bounce", local.removeprefix("bounce+")) == (public_id,)
    deadline = time.monotonic() + 20
    while info(server, tenant, public_id)["status"] != "delivered":
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.05)

    # days later, the receiving side sends a DSN to that return path
    report = reports.dsn(arrived.mail_from, "rita@example.org")
    with smtplib.SMTP("127.0.0.1", bounce_port, timeout=10) as smtp:
        smtp.sendmail("", [arrived.mail_from], report)

    record = info(server, tenant, public_id)
    assert record["status"] == "bounced"
    assert (record["smtp_answer_code"], record["smtp_answer_subcode"]) == (550, "5.1.1")

    def listed(conn: sa.Connection) -> tuple[list[Any], list[Any]]:
        return (
            conn.execute(sa.select(bounces.c.email_to, bounces.c.source)).all(),
            conn.execute(sa.select(suppressions.c.email, suppressions.c.bounced)).all(),
        )

    listed_bounces, suppressed = server.runtime.db.read_sync(listed)
    assert [tuple(r) for r in listed_bounces] == [("rita@example.org", "dsn")]
    assert [tuple(r) for r in suppressed] == [("rita@example.org", 1)]
