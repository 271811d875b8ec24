"""Suppression and one-click unsubscribe over real sockets: HTTP send → store → SMTP to an
aiosmtpd sink; the sink's copy carries List-Unsubscribe headers whose link is then followed
over HTTP (GET shows a page, POST unsubscribes), and the next send is held."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mailpulse.core import unsubscribe
from tests.api.test_send import mail, send
from tests.e2e.test_send_and_deliver import wait_for_records
from tests.support.dnsserver import DnsServer
from tests.support.server import RunningServer, Tenant, running_server
from tests.support.smtpsink import SmtpSink, free_port

PUBLIC_URL = "https://mail.example.net/base"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[RunningServer, SmtpSink]]:
    port = free_port("127.0.0.2")
    with DnsServer() as dns, SmtpSink("127.0.0.2", port) as sink:
        dns.set("example.org", ("MX", (10, "mx.example.org")))
        dns.set("mx.example.org", ("A", "127.0.0.2"))
        with running_server(
            f"sqlite:///{tmp_path / 'e2e.db'}",
            tmp_path,
            deliver=True,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            allow_private_mx=True,
            public_url=PUBLIC_URL,
            bounce_domain="bounces.example.net",
        ) as server:
            yield server, sink


def ids_of(server: RunningServer, tenant: Tenant) -> dict[str, str]:
    with server.client() as http:
        return {
            r["recipient"]: r["id"] for r in http.get("/smtp/emails", headers=tenant.auth).json()
        }


def list_unsubscribe(data: bytes) -> tuple[str, str]:
    """The link and the mailto of a received message's List-Unsubscribe header."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(parsed.get_all("List-Unsubscribe") or []) == 1
    link, mailto = re.findall(r"<([^>]*)>", str(parsed["List-Unsubscribe"]))
    return link, mailto


def local_path(link: str) -> str:
    """The link's path on the test server (its public base URL names another host)."""
    assert link.startswith(PUBLIC_URL + "/unsubscribe/")
    return urlsplit(link).path.removeprefix("/base")


def test_a_send_to_a_suppressed_address_is_held_and_the_others_delivered(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    server, sink = world
    tenant = server.tenant()
    with server.client() as http:
        added = http.post(
            "/smtp/unsubscribe",
            headers=tenant.auth,
            json={"emails": [{"email": "left@example.org", "comment": "asked"}]},
        )
    assert added.status_code == 200
    payload = mail(tenant, to=[{"email": "rita@example.org"}, {"email": "left@example.org"}])
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 200 and answer.json()["result"] is True
    ids = ids_of(server, tenant)
    records = {
        r["recipient"]: r for r in wait_for_records(server, tenant, [ids["rita@example.org"]])
    }
    assert records["rita@example.org"]["status"] == "delivered"
    with server.client() as http:
        held = http.get(f"/smtp/emails/{ids['left@example.org']}", headers=tenant.auth).json()
    assert held["status"] == "suppressed"
    assert held["smtp_answer_data"] == "suppressed: unsubscribed by the sender"
    assert [list(m.rcpt_tos) for m in sink.messages] == [["rita@example.org"]]


def test_every_copy_carries_its_own_list_unsubscribe_and_the_post_link_unsubscribes(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    server, sink = world
    tenant = server.tenant()
    payload = mail(tenant, to=[{"email": "rita@example.org"}, {"email": "sam@example.org"}])
    assert send(server, tenant, {"email": payload}).status_code == 200
    ids = ids_of(server, tenant)
    wait_for_records(server, tenant, list(ids.values()))

    copies = {m.rcpt_tos[0]: m for m in sink.messages}
    assert set(copies) == {"rita@example.org", "sam@example.org"}
    assert all(len(m.rcpt_tos) == 1 for m in sink.messages)
    for line in copies["rita@example.org"].data.split(b"\r\n"):
        assert len(line) <= 998
    link, mailto = list_unsubscribe(copies["rita@example.org"].data)
    other_link, _ = list_unsubscribe(copies["sam@example.org"].data)
    assert link != other_link
    token = link.rsplit("/", 1)[1]
    mail_token = unsubscribe.mail_token(server.runtime.links, ids["rita@example.org"])
    assert mailto == f"mailto:unsubscribe+{mail_token}@bounces.example.net"
    found = unsubscribe.read(server.runtime.links, token)
    assert found == unsubscribe.Unsubscribe(tenant.id, "rita@example.org", ids["rita@example.org"])

    def is_unsubscribed(address: str) -> bool:
        with server.client() as http:
            return bool(
                http.get(
                    "/smtp/unsubscribe/search", headers=tenant.auth, params={"email": address}
                ).json()["result"]
            )

    path = local_path(link)
    with server.client() as http:
        page = http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "rita@example.org" in page.text and '<form method="post">' in page.text
        assert page.headers["cache-control"] == "no-store"
        # a link scanner's GET (and HEAD) unsubscribes nobody
        assert http.head(path).status_code == 200
    assert is_unsubscribed("rita@example.org") is False

    with server.client() as http:
        posted = http.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert posted.status_code == 200
    assert "text/html" in posted.headers["content-type"]
    assert is_unsubscribed("rita@example.org") is True
    assert is_unsubscribed("sam@example.org") is False
    with server.client() as http:
        rows = http.get("/smtp/unsubscribe", headers=tenant.auth).json()
    assert [(r["email"], r["unsubscribe_by_link"], r["unsubscribe_by_user"]) for r in rows] == [
        ("rita@example.org", 1, 0)
    ]

    # the next send to her is held (never queued: nothing to wait for); Sam still gets his
    before = len(sink.messages)
    again = send(server, tenant, {"email": payload})
    assert again.status_code == 200
    with server.client() as http:
        latest = http.get("/smtp/emails", headers=tenant.auth, params={"limit": 2}).json()
    by_recipient = {r["recipient"]: r for r in latest}
    assert by_recipient["rita@example.org"]["id"] == again.json()["id"]
    assert by_recipient["rita@example.org"]["status"] == "suppressed"
    assert by_recipient["rita@example.org"]["smtp_answer_data"] == (
        "suppressed: unsubscribed by link"
    )
    wait_for_records(server, tenant, [by_recipient["sam@example.org"]["id"]])
    assert [list(m.rcpt_tos) for m in sink.messages[before:]] == [["sam@example.org"]]


@pytest.mark.parametrize(
    "token",
    [
        "forged-aaaaaaaaaaaaaaaaaaaaaaaa",
        "gezdgnbvgy3tqojqgezdgnbvgy3tqojq-aaaaaaaaaaaaaaaaaaaaaaaa",
        "x" * 5000,
        "%3Cscript%3E",
    ],
)
def test_a_forged_token_is_a_404_page_and_unsubscribes_nobody(
    world: tuple[RunningServer, SmtpSink], token: str
) -> None:
    server, _sink = world
    tenant = server.tenant()
    with server.client(follow_redirects=False) as http:
        for method in ("GET", "POST"):
            answer = http.request(method, f"/unsubscribe/{token}")
            assert answer.status_code == 404, (method, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert "<script>" not in answer.text
        rows = http.get("/smtp/unsubscribe", headers=tenant.auth).json()
    assert rows == []


def test_a_token_of_another_purpose_does_not_unsubscribe(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    server, _sink = world
    tenant = server.tenant()
    forged = server.runtime.links.sign("bounce", str(tenant.id), "rita@example.org", "x")
    with server.client() as http:
        assert http.post(f"/unsubscribe/{forged}").status_code == 404


def test_a_valid_token_of_an_unknown_account_is_a_404(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    server, _sink = world
    token = unsubscribe.token(server.runtime.links, 987654, "rita@example.org", "x")
    with server.client() as http:
        assert http.get(f"/unsubscribe/{token}").status_code == 200  # no store read on GET
        assert http.post(f"/unsubscribe/{token}").status_code == 404


def test_the_one_click_body_has_a_small_limit(world: tuple[RunningServer, SmtpSink]) -> None:
    server, _sink = world
    tenant = server.tenant()
    token = unsubscribe.token(server.runtime.links, tenant.id, "rita@example.org", "x")
    with server.client() as http:
        answer = http.post(f"/unsubscribe/{token}", content=b"x" * 5000)
    assert answer.status_code == 413


def test_the_page_escapes_the_address_it_shows(world: tuple[RunningServer, SmtpSink]) -> None:
    server, _sink = world
    tenant = server.tenant()
    token = unsubscribe.token(server.runtime.links, tenant.id, '"<script>x</script>"@x.org', "x")
    with server.client() as http:
        for method in ("GET", "POST"):
            page = http.request(method, f"/unsubscribe/{token}")
            assert page.status_code == 200
            assert "<script>" not in page.text
            assert "&lt;script&gt;" in page.text
