"""Resubscribe over real sockets: POST /smtp/resubscribe → the confirmation is delivered over
SMTP to a sink (MX found on a loopback DNS server) → its link's GET page changes nothing → its
POST takes the address off the list. The daily limit runs on an injected clock. Each test runs
on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mailpulse.core.clock import FixedClock
from mailpulse.core.resubscribe import LinkRef, link_token
from mailpulse.store import suppression
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import messages, resubscriptions
from tests.support.databases import ENGINES, fresh_database_url
from tests.support.dnsserver import DnsServer
from tests.support.server import RunningServer, Tenant, running_server
from tests.support.smtpsink import SmtpSink, free_port

START = datetime(2026, 12, 1, 9, 0, 0)
SENDER = "news@example.com"
RITA = "rita@example.org"
# The tests move the clock by days: the tenants' access tokens must outlive that.
LONG_TOKENS = {"token_ttl_seconds": 30 * 24 * 3600}


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def world(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> Iterator[tuple[RunningServer, SmtpSink]]:
    """A delivering server on the injected clock, and the sink example.org's MX points to."""
    port = free_port("127.0.0.2")
    with DnsServer() as dns, SmtpSink("127.0.0.2", port) as sink:
        dns.set("example.org", ("MX", (10, "mx.example.org")))
        dns.set("mx.example.org", ("A", "127.0.0.2"))
        with running_server(
            database_url,
            tmp_path / "var",
            clock,
            deliver=True,
            dns_nameservers=["127.0.0.1"],
            dns_port=dns.port,
            mx_port=port,
            allow_private_mx=True,  # the sink is on loopback
            **LONG_TOKENS,
        ) as server:
            yield server, sink


@pytest.fixture
def server(database_url: str, tmp_path: Path, clock: FixedClock) -> Iterator[RunningServer]:
    """A server that does not deliver (the limit and the links need no SMTP)."""
    with running_server(database_url, tmp_path / "var", clock, **LONG_TOKENS) as running:
        yield running


# -- helpers -------------------------------------------------------------------------------------
def suppress(server: RunningServer, tenant: Tenant, *addresses: str) -> None:
    now = server.runtime.clock.now()
    entries = [Suppress(a, unsubscribe_by_link=True) for a in addresses]
    server.runtime.db.write_sync(lambda conn: suppression.add(conn, tenant.id, entries, now))


def listed(server: RunningServer, tenant: Tenant, address: str) -> bool:
    return bool(
        server.runtime.db.read_sync(
            lambda conn: suppression.suppressed_among(conn, tenant.id, [address])
        )
    )


def resubscribe(server: RunningServer, tenant: Tenant, **body: Any) -> httpx.Response:
    with server.client() as http:
        return http.post("/smtp/resubscribe", headers=tenant.auth, json=body)


def stored_subject(server: RunningServer, public_id: str, tenant: Tenant) -> str:
    with server.client() as http:
        record = http.get(f"/smtp/emails/{public_id}", headers=tenant.auth).json()
    return str(record["subject"])


def link_path(server: RunningServer, public_id: str) -> str:
    """The confirmation's link, read from the stored message (the bytes delivery sends)."""
    rows = server.runtime.db.read_sync(
        lambda conn: conn.execute(
            sa.select(messages.c.raw).where(messages.c.message_id_header.like(f"<{public_id}@%>"))
        ).all()
    )
    (row,) = rows
    return link_in(bytes(row.raw), server.url)


def link_in(raw: bytes, base: str) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    text = parsed.get_body(("plain",))
    assert text is not None
    found = re.findall(re.escape(base) + r"(/resubscribe/[a-z2-7]+-[a-z2-7]+)", text.get_content())
    assert len(set(found)) == 1, found
    return str(found[0])


OVER_LIMIT = {"error_code": 422, "message": "No more than 5 are allowed per day"}


# -- the story -----------------------------------------------------------------------------------
def test_the_confirmation_is_mailed_in_the_language_asked_and_its_link_resubscribes(
    world: tuple[RunningServer, SmtpSink],
) -> None:
    server, sink = world
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)

    answer = resubscribe(server, tenant, email=RITA, sender=SENDER, lang="ua")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["result"] is True and re.fullmatch(
        r"[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}", body["id"]
    )

    assert sink.wait_for(lambda: sink.received_by(RITA), timeout=20), "nothing delivered"
    (received,) = sink.received_by(RITA)
    mail = email.message_from_bytes(received.data, policy=email.policy.default)
    assert mail["From"] == SENDER and mail["To"] == RITA
    assert mail["Subject"] == f"Підтвердіть: знову отримувати листи від {SENDER}"
    assert f"<{body['id']}@" in mail["Message-ID"]
    html = mail.get_body(("html",))
    assert html is not None and '<html lang="uk">' in html.get_content()
    path = link_in(received.data, server.url)

    with server.client() as http:
        record = http.get(f"/smtp/emails/{body['id']}", headers=tenant.auth).json()
        assert (record["recipient"], record["sender"]) == (RITA, SENDER)

        page = http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<form method="post">' in page.text and "Так, знову отримувати листи" in page.text
        assert listed(server, tenant, RITA), "a GET must change nothing"
        assert http.head(path).status_code == 200 and listed(server, tenant, RITA)

        followed = http.post(path)
        assert followed.status_code == 200
        assert "Готово" in followed.text and "<form" not in followed.text
        assert not listed(server, tenant, RITA)

        # Used up: the address may leave again later; the old link must not bring it back.
        suppress(server, tenant, RITA)
        again = http.post(path)
        assert again.status_code == 410 and "вже було використано" in again.text
        assert http.get(path).status_code == 410
    assert listed(server, tenant, RITA)
    confirmed = server.runtime.db.read_sync(
        lambda conn: conn.execute(sa.select(resubscriptions.c.confirmed_at)).scalar_one()
    )
    assert confirmed == START


def test_the_sixth_in_a_day_is_refused_and_allowed_again_after_24_hours(
    server: RunningServer, clock: FixedClock
) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    for hour in range(5):
        answer = resubscribe(server, tenant, email=RITA, sender=SENDER)
        assert answer.status_code == 200, (hour, answer.text)
        clock.advance(hours=1)
    sixth = resubscribe(server, tenant, email=RITA, sender=SENDER)
    assert (sixth.status_code, sixth.json()) == (422, OVER_LIMIT)
    # 24 hours after the first one it no longer counts: one more is allowed, then not again.
    clock.advance(hours=19)
    assert resubscribe(server, tenant, email=RITA, sender=SENDER).status_code == 200
    assert resubscribe(server, tenant, email=RITA, sender=SENDER).json() == OVER_LIMIT
    with server.client() as http:
        log = http.get("/smtp/emails", headers=tenant.auth).json()
    assert len(log) == 6  # a refused resubscribe queues nothing


def test_the_limit_holds_for_concurrent_requests_to_two_servers_on_one_store(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    with (
        running_server(database_url, tmp_path / "var", clock) as one,
        running_server(database_url, tmp_path / "var", clock) as two,
    ):
        tenant = one.tenant(sender=SENDER)
        suppress(one, tenant, RITA)

        def call(n: int) -> int:
            return resubscribe((one, two)[n % 2], tenant, email=RITA, sender=SENDER).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(call, range(12)))
    assert sorted(statuses) == [200] * 5 + [422] * 7


def test_unknown_or_missing_language_is_english_and_each_language_is_its_own(
    server: RunningServer,
) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    expected = {
        None: f"Please confirm: receive emails from {SENDER} again",
        "de": f"Please confirm: receive emails from {SENDER} again",
        "RU": f"Подтвердите: снова получать письма от {SENDER}",
        "tr": f"Lütfen onaylayın: {SENDER} gönderenden yeniden e-posta alın",
        "pt": f"Confirme: voltar a receber e-mails de {SENDER}",
    }
    for lang, subject in expected.items():
        body = {"email": RITA, "sender": SENDER} | ({"lang": lang} if lang else {})
        answer = resubscribe(server, tenant, **body)
        assert answer.status_code == 200, answer.text
        assert stored_subject(server, answer.json()["id"], tenant) == subject


def test_a_form_encoded_request_is_read_like_json(server: RunningServer) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    with server.client() as http:
        answer = http.post(
            "/smtp/resubscribe",
            headers=tenant.auth,
            data={"email": RITA, "sender": SENDER, "lang": "es"},
        )
    assert answer.status_code == 200, answer.text
    subject = stored_subject(server, answer.json()["id"], tenant)
    assert subject.startswith("Confirme: volver a recibir correos")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"sender": SENDER}, 422, "Argument email missing"),
        ({"email": "nobody", "sender": SENDER}, 422, "Argument email is invalid"),
        ({"email": RITA}, 422, "Argument sender missing"),
        ({"email": RITA, "sender": "other@example.com"}, 422, "Sender is not valid"),
        ({"email": RITA, "sender": SENDER, "lang": 7}, 422, "Argument lang must be string"),
        ({"email": "bob@example.org", "sender": SENDER}, 422, "Blocked email not found"),
    ],
)
def test_each_refusal_is_sendpulses_and_counts_nothing(
    server: RunningServer, body: dict[str, Any], code: int, message: str
) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    answer = resubscribe(server, tenant, **body)
    assert (answer.status_code, answer.json()) == (422, {"error_code": code, "message": message})
    count = server.runtime.db.read_sync(
        lambda conn: conn.execute(sa.select(sa.func.count()).select_from(resubscriptions)).scalar()
    )
    assert count == 0


def test_an_account_without_smtp_is_smtp_user_not_found(server: RunningServer) -> None:
    tenant = server.tenant(sender=SENDER, activated=False)
    suppress(server, tenant, RITA)
    answer = resubscribe(server, tenant, email=RITA, sender=SENDER)
    assert (answer.status_code, answer.json()) == (
        422,
        {"error_code": 503, "message": "Smtp user not found"},
    )


def test_without_a_credential_it_is_401(server: RunningServer) -> None:
    with server.client() as http:
        answer = http.post("/smtp/resubscribe", json={"email": RITA, "sender": SENDER})
    assert answer.status_code == 401


# -- the link ------------------------------------------------------------------------------------
def test_a_forged_or_foreign_token_is_404_and_never_a_redirect(server: RunningServer) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    public_id = resubscribe(server, tenant, email=RITA, sender=SENDER).json()["id"]
    good = link_path(server, public_id)
    token = good.rpartition("/")[2]
    rid = server.runtime.db.read_sync(
        lambda conn: conn.execute(sa.select(resubscriptions.c.id)).scalar_one()
    )
    signer = server.runtime.resubscriber.signer
    forged = [
        "nothing",
        token[:-1] + ("a" if token[-1] != "a" else "b"),
        token + "a",
        "a" * 2000 + "-" + "b" * 24,
        link_token(signer, LinkRef(tenant.id, RITA, rid + 1)),  # no such resubscription
        link_token(signer, LinkRef(tenant.id, "bob@example.org", rid)),  # another address
        link_token(signer, LinkRef(tenant.id + 1, RITA, rid)),  # another account
        signer.sign("unsubscribe", str(tenant.id), RITA, str(rid)),  # another purpose
        "a%00b-" + "b" * 24,
        # signed, yet values no store could hold or bind: still a plain 404 on every engine
        link_token(signer, LinkRef(tenant.id, "a\x00@example.org", rid)),
        link_token(signer, LinkRef(tenant.id, RITA, 2**70)),
        link_token(signer, LinkRef(2**70, RITA, rid)),
    ]
    with server.client(follow_redirects=False) as http:
        for bad in forged:
            for method in ("GET", "POST"):
                answer = http.request(method, f"/resubscribe/{bad}")
                assert answer.status_code == 404, (method, bad)
                assert "location" not in answer.headers
                assert answer.headers["content-type"].startswith("text/html")
    assert listed(server, tenant, RITA)


def test_a_link_older_than_seven_days_changes_nothing(
    server: RunningServer, clock: FixedClock
) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    public_id = resubscribe(server, tenant, email=RITA, sender=SENDER, lang="es").json()["id"]
    path = link_path(server, public_id)
    clock.advance(days=7, seconds=1)
    with server.client() as http:
        page = http.get(path)
        followed = http.post(path)
    assert page.status_code == 410 and "ha caducado" in page.text and "<form" not in page.text
    assert followed.status_code == 410
    assert listed(server, tenant, RITA)


def test_following_one_link_uses_up_every_open_link_of_that_address(
    server: RunningServer, clock: FixedClock
) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA, "bob@example.org")
    first = resubscribe(server, tenant, email=RITA, sender=SENDER).json()["id"]
    clock.advance(hours=1)
    second = resubscribe(server, tenant, email=RITA, sender=SENDER).json()["id"]
    bobs = resubscribe(server, tenant, email="bob@example.org", sender=SENDER).json()["id"]
    with server.client() as http:
        assert http.post(link_path(server, second)).status_code == 200
        suppress(server, tenant, RITA)  # left again: the older link must not bring it back
        assert http.post(link_path(server, first)).status_code == 410
        assert listed(server, tenant, RITA)
        # another address's link is its own
        assert http.post(link_path(server, bobs)).status_code == 200
    assert not listed(server, tenant, "bob@example.org")


def test_tenants_are_isolated(server: RunningServer) -> None:
    acme = server.tenant("acme", sender=SENDER)
    other = server.tenant("other", sender="hello@example.net")
    suppress(server, acme, RITA)
    suppress(server, other, RITA)

    # The other account's list is not acme's: an address only acme suppresses is not found.
    suppress(server, acme, "bob@example.org")
    refused = resubscribe(server, other, email="bob@example.org", sender="hello@example.net")
    assert refused.json()["message"] == "Blocked email not found"
    # ...nor is acme's sender the other's.
    refused = resubscribe(server, other, email=RITA, sender=SENDER)
    assert refused.json()["message"] == "Sender is not valid"

    # Acme's five do not count against the other account.
    ids = [resubscribe(server, acme, email=RITA, sender=SENDER).json()["id"] for _ in range(5)]
    assert resubscribe(server, acme, email=RITA, sender=SENDER).json() == OVER_LIMIT
    theirs = resubscribe(server, other, email=RITA, sender="hello@example.net")
    assert theirs.status_code == 200

    # Following acme's link takes the address off acme's list only.
    with server.client() as http:
        assert http.get(f"/smtp/emails/{ids[0]}", headers=other.auth).status_code == 400
        assert http.post(link_path(server, ids[0])).status_code == 200
    assert not listed(server, acme, RITA)
    assert listed(server, other, RITA)


def test_the_link_pages_refuse_a_large_body(server: RunningServer) -> None:
    with server.client() as http:
        answer = http.post("/resubscribe/anything", content=b"x" * 4096)
        assert answer.status_code == 413
        tenant = server.tenant(sender=SENDER)
        big = http.post(
            "/smtp/resubscribe", headers=tenant.auth, json={"email": RITA, "pad": "x" * 20_000}
        )
        assert big.status_code == 413


def test_the_link_lasts_exactly_as_long_as_documented(
    server: RunningServer, clock: FixedClock
) -> None:
    tenant = server.tenant(sender=SENDER)
    suppress(server, tenant, RITA)
    public_id = resubscribe(server, tenant, email=RITA, sender=SENDER).json()["id"]
    path = link_path(server, public_id)
    clock.advance(days=7)
    with server.client() as http:
        assert http.post(path).status_code == 200
    assert not listed(server, tenant, RITA)
