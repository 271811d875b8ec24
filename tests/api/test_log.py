"""The email log over real HTTP: list, total, one record, info; and tenant isolation."""

from __future__ import annotations

import json
import re
from datetime import datetime
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

from mailpulse.core.clock import FixedClock
from tests.api.test_send import mail, send
from tests.support.server import RunningServer, Tenant, running_server

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def sent(server: RunningServer, tenant: Tenant, to: str, **extra: Any) -> str:
    answer = send(server, tenant, {"email": mail(tenant, to=[{"email": to}], **extra)})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def test_record_has_the_sendpulse_fields_and_types(server: RunningServer) -> None:
    tenant = server.tenant()
    email_id = sent(server, tenant, "rita@example.org", subject="Receipt")
    with server.client() as http:
        record = http.get(f"/smtp/emails/{email_id}", headers=tenant.auth).json()
    assert record["id"] == email_id
    assert record["sender"] == tenant.sender
    assert record["recipient"] == "rita@example.org"
    assert record["subject"] == "Receipt"
    assert isinstance(record["total_size"], int) and record["total_size"] > 100
    assert record["sender_ip"] == "127.0.0.1"
    assert record["smtp_answer_code"] is None
    assert record["smtp_answer_subcode"] == "" and isinstance(record["smtp_answer_data"], str)
    assert record["status"] == "queued"
    assert DATE_RE.match(record["send_date"]) and DATE_RE.match(record["accepted_date"])
    assert record["tracking"] == {"click": 0, "open": 0, "link": [], "client_info": []}


def test_list_is_newest_first_with_limit_and_offset(server: RunningServer) -> None:
    tenant = server.tenant()
    ids = [sent(server, tenant, f"r{i}@example.org") for i in range(5)]
    with server.client() as http:
        everything = http.get("/smtp/emails", headers=tenant.auth).json()
        page = http.get("/smtp/emails?limit=2&offset=1", headers=tenant.auth).json()
        total = http.get("/smtp/emails/total", headers=tenant.auth).json()
    assert [r["id"] for r in everything] == ids[::-1]
    assert [r["id"] for r in page] == ids[::-1][1:3]
    assert total == {"total": 5}


def test_an_offset_up_to_the_largest_64_bit_integer_is_an_empty_page(
    any_server: RunningServer,
) -> None:
    """PostgreSQL binds LIMIT and OFFSET as bigint: an offset past 32 bits is no 500."""
    tenant = any_server.tenant()
    sent(any_server, tenant, "rita@example.org")
    with any_server.client() as http:
        for offset in (2**31, 2**63 - 2, 2**63 - 1):
            answer = http.get(f"/smtp/emails?offset={offset}&limit=0", headers=tenant.auth)
            assert (answer.status_code, answer.json()) == (200, []), offset
            answer = http.get(f"/smtp/emails?offset={offset}", headers=tenant.auth)
            assert (answer.status_code, answer.json()) == (200, []), offset


def test_list_filters_by_sender_and_recipient(server: RunningServer) -> None:
    tenant = server.tenant()
    sent(server, tenant, "a@example.org")
    wanted = sent(server, tenant, "B@Example.org")
    with server.client() as http:
        by_recipient = http.get(
            "/smtp/emails", params={"recipient": "b@example.org"}, headers=tenant.auth
        ).json()
        by_sender = http.get(
            "/smtp/emails", params={"sender": tenant.sender.upper()}, headers=tenant.auth
        ).json()
        nobody = http.get(
            "/smtp/emails", params={"sender": "x@example.org"}, headers=tenant.auth
        ).json()
    assert [r["id"] for r in by_recipient] == [wanted]
    assert len(by_sender) == 2
    assert nobody == []


def test_list_filters_by_date_and_datetime(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 3, 1, 10, 0, 0))
    with running_server(f"sqlite:///{tmp_path / 'd.db'}", tmp_path, clock=clock) as server:
        tenant = server.tenant()
        tenant.token = server.api_key(tenant)[1]  # a static key does not expire with the clock
        first = sent(server, tenant, "a@example.org")
        clock.advance(days=1)
        second = sent(server, tenant, "b@example.org")
        clock.advance(hours=5)
        third = sent(server, tenant, "c@example.org")
        with server.client() as http:

            def ids(**query: str) -> list[str]:
                rows = http.get("/smtp/emails", params=query, headers=tenant.auth).json()
                return [r["id"] for r in rows]

            assert ids(**{"from": "2026-03-02"}) == [third, second]
            assert ids(to="2026-03-01") == [first]
            assert ids(**{"from": "2026-03-02", "to": "2026-03-02"}) == [third, second]
            assert ids(**{"from": "2026-03-02 12:00:00"}) == [third]
            assert ids(to="2026-03-02 10:00:00") == [second, first]
            assert ids(from_date="2026-03-02", to_date="2026-03-02 11:00:00") == [second]
            bad = http.get("/smtp/emails", params={"from": "yesterday"}, headers=tenant.auth)
    assert bad.status_code == 400
    assert bad.json()["error_code"] == 799


def test_php_style_empty_filters_mean_no_filter(server: RunningServer) -> None:
    tenant = server.tenant()
    email_id = sent(server, tenant, "a@example.org")
    query = "limit=0&offset=0&from=&to=&sender=&recipient=&country=off"
    with server.client() as http:
        rows = http.get(f"/smtp/emails?{query}", headers=tenant.auth).json()
    assert [r["id"] for r in rows] == [email_id]


def test_limit_defaults_to_100_and_is_capped_at_500(tmp_path: Path) -> None:
    from mailpulse.api.emails import log_filter

    assert log_filter({}, 100, 500).limit == 100
    assert log_filter({"limit": "0"}, 100, 500).limit == 100
    assert log_filter({"limit": 10_000}, 100, 500).limit == 500


def test_unknown_id_is_400_no_such_email(server: RunningServer) -> None:
    tenant = server.tenant()
    with server.client() as http:
        for bad in ("abcdef-ghijkl-mn", "1", "nope@x"):
            answer = http.get(f"/smtp/emails/{bad}", headers=tenant.auth)
            assert answer.status_code == 400
            assert answer.json() == {"error_code": 14, "message": "No such email"}


def test_info_returns_the_known_records_in_order(server: RunningServer) -> None:
    tenant = server.tenant()
    a = sent(server, tenant, "a@example.org")
    b = sent(server, tenant, "b@example.org")
    with server.client() as http:
        answer = http.post(
            "/smtp/emails/info", headers=tenant.auth, json={"emails": [b, "zzzzzz-zzzzzz-zz", a]}
        )
    assert answer.status_code == 200
    assert [r["id"] for r in answer.json()] == [b, a]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 832, "Emails param empty or incorrect"),
        ({"emails": []}, 832, "Emails param empty or incorrect"),
        ({"emails": "garbage"}, 832, "Emails param empty or incorrect"),
        ({"emails": [{"a": 1}]}, 832, "Emails param empty or incorrect"),
        ({"emails": ["x"] * 501}, 832, "Emails param empty or incorrect"),
        ({"emails": ["zzzzzz-zzzzzz-zz"]}, 14, "No such emails"),
    ],
)
def test_info_errors(server: RunningServer, body: Any, code: int, message: str) -> None:
    tenant = server.tenant()
    with server.client() as http:
        answer = http.post("/smtp/emails/info", headers=tenant.auth, json=body)
    assert answer.status_code == 400
    assert answer.json() == {"error_code": code, "message": message}


def test_info_accepts_the_id_list_as_a_json_string(server: RunningServer) -> None:
    tenant = server.tenant()
    a = sent(server, tenant, "a@example.org")
    with server.client() as http:
        answer = http.post("/smtp/emails/info", headers=tenant.auth, json={"emails": f'["{a}"]'})
    assert [r["id"] for r in answer.json()] == [a]


def test_tenants_never_see_each_others_emails(server: RunningServer) -> None:
    alice = server.tenant("alice", sender="alice@a.example")
    bob = server.tenant("bob", sender="bob@b.example")
    alices = sent(server, alice, "shared@example.org")
    with server.client() as http:
        assert http.get(f"/smtp/emails/{alices}", headers=bob.auth).status_code == 400
        assert http.get("/smtp/emails", headers=bob.auth).json() == []
        assert http.get("/smtp/emails/total", headers=bob.auth).json() == {"total": 0}
        assert (
            http.get(
                "/smtp/emails", params={"recipient": "shared@example.org"}, headers=bob.auth
            ).json()
            == []
        )
        info = http.post("/smtp/emails/info", headers=bob.auth, json={"emails": [alices]})
        assert info.status_code == 400
        assert http.get("/smtp/emails/total", headers=alice.auth).json() == {"total": 1}


def test_pysendpulse_json_query_string_and_node_get_body_are_understood(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    sent(server, tenant, "a@example.org")
    wanted = sent(server, tenant, "b@example.org")
    with server.client() as http:
        py = http.get(
            "/smtp/emails?%7B%22limit%22:%2010,%20%22offset%22:%200,%20%22from%22:%20null,"
            "%20%22recipient%22:%20%22b@example.org%22%7D",
            headers=tenant.auth,
        ).json()
        node = http.request(
            "GET",
            "/smtp/emails",
            headers=tenant.auth,
            json={"limit": 10, "offset": 0, "from": "", "to": "", "recipient": "b@example.org"},
        ).json()
    assert [r["id"] for r in py] == [wanted]
    assert [r["id"] for r in node] == [wanted]
    # httpx would read "//smtp" as a host name; send the doubled slashes as the C# client does
    conn = HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    conn.request("GET", "//smtp//emails/", headers=tenant.auth)
    slashes = conn.getresponse()
    assert slashes.status == 200 and len(json.loads(slashes.read())) == 2
