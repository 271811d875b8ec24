"""The unsubscribe list over real HTTP: POST, DELETE, GET /smtp/unsubscribe and its search, in
every encoding the clients send (compat §h), their refusals (compat §c), tenant isolation, and
the suppression step of the send (status ``suppressed``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import phpserialize
import pytest
import sqlalchemy as sa

from mailpulse.store import suppression
from mailpulse.store.suppression import Suppress
from mailpulse.store.tables import deliveries, delivery_queue
from tests.api.test_send import mail, send
from tests.support.server import RunningServer, Tenant


def call(
    server: RunningServer, tenant: Tenant, method: str, path: str = "/smtp/unsubscribe", **kw: Any
) -> httpx.Response:
    with server.client() as http:
        return http.request(method, path, headers=tenant.auth, **kw)


def listed(server: RunningServer, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    answer = call(server, tenant, "GET", params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def searched(server: RunningServer, tenant: Tenant, email: str) -> bool:
    answer = call(server, tenant, "GET", "/smtp/unsubscribe/search", params={"email": email})
    assert answer.status_code == 200, answer.text
    result: bool = answer.json()["result"]
    return result


def php(value: Any) -> str:
    return phpserialize.dumps(value).decode()


ENTRIES = [{"email": "Ann@Example.org", "comment": "asked"}, {"email": "bob@example.org"}]

# The same two entries in every shape a client sends them (compat §a.8, §h).
ADD_BODIES: dict[str, dict[str, Any]] = {
    "json list": {"json": {"emails": ENTRIES}},
    "json string (pysendpulse)": {"json": {"emails": json.dumps(ENTRIES)}},
    "php serialize in json (node)": {"json": {"emails": php(ENTRIES)}},
    "php serialize in a form (php 1)": {"data": {"emails": php(ENTRIES)}},
    "json string in a form (c#, ruby)": {"data": {"emails": json.dumps(ENTRIES)}},
    "int-keyed object with gaps": {"json": {"emails": {"3": ENTRIES[1], "0": ENTRIES[0]}}},
    "php array with gaps": {"json": {"emails": php({0: ENTRIES[0], 5: ENTRIES[1]})}},
    "multipart": {"files": {"emails": (None, json.dumps(ENTRIES))}},
}


@pytest.mark.parametrize("body", ADD_BODIES.values(), ids=ADD_BODIES.keys())
def test_post_unsubscribes_in_every_encoding_and_lists_by_user(
    server: RunningServer, body: dict[str, Any]
) -> None:
    tenant = server.tenant()
    answer = call(server, tenant, "POST", **body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": True}
    rows = listed(server, tenant)
    assert sorted(r["email"] for r in rows) == ["ann@example.org", "bob@example.org"]
    for row in rows:
        assert set(row) == {
            "email",
            "unsubscribe_by_link",
            "unsubscribe_by_user",
            "spam_complaint",
            "date",
        }
        assert (row["unsubscribe_by_link"], row["unsubscribe_by_user"], row["spam_complaint"]) == (
            0,
            1,
            0,
        )
        datetime.strptime(row["date"], "%Y-%m-%d %H:%M:%S")
    assert searched(server, tenant, "ANN@example.org") is True
    assert searched(server, tenant, "carl@example.org") is False


REMOVALS = ["ann@example.org", "BOB@example.org"]
DELETE_BODIES: dict[str, dict[str, Any]] = {
    "json list": {"json": {"emails": REMOVALS}},
    "json string (pysendpulse)": {"json": {"emails": json.dumps(REMOVALS)}},
    "php serialize in json (node)": {"json": {"emails": php(REMOVALS)}},
    "php serialize in a form": {"data": {"emails": php(REMOVALS)}},
    "int-keyed object with gaps": {"json": {"emails": {"7": REMOVALS[1], "2": REMOVALS[0]}}},
    "objects": {"json": {"emails": [{"email": e} for e in REMOVALS]}},
}


@pytest.mark.parametrize("body", DELETE_BODIES.values(), ids=DELETE_BODIES.keys())
def test_delete_with_a_body_removes_the_addresses_in_every_encoding(
    server: RunningServer, body: dict[str, Any]
) -> None:
    tenant = server.tenant()
    entries = [*ENTRIES, {"email": "carl@example.org"}]
    assert call(server, tenant, "POST", json={"emails": entries}).status_code == 200
    answer = call(server, tenant, "DELETE", **body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": True}
    assert [r["email"] for r in listed(server, tenant)] == ["carl@example.org"]


def test_a_json_list_of_one_address_is_not_taken_for_an_address(server: RunningServer) -> None:
    tenant = server.tenant()
    one = json.dumps(["dan@example.org"])  # '["dan@example.org"]': no space, one "@"
    assert call(server, tenant, "POST", json={"emails": one}).status_code == 200
    assert searched(server, tenant, "dan@example.org") is True
    assert call(server, tenant, "DELETE", json={"emails": one}).status_code == 200
    assert searched(server, tenant, "dan@example.org") is False


def test_a_single_address_in_a_form_is_a_list_of_one(server: RunningServer) -> None:
    tenant = server.tenant()
    assert call(server, tenant, "POST", data={"emails": "dan@example.org"}).status_code == 200
    assert searched(server, tenant, "dan@example.org") is True
    assert call(server, tenant, "DELETE", data={"emails": "dan@example.org"}).status_code == 200
    assert searched(server, tenant, "dan@example.org") is False


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({}, 400, 14, "Empty emails"),
        ({"emails": []}, 400, 14, "Empty emails"),
        ({"emails": ""}, 400, 14, "Empty emails"),
        ({"emails": "[]"}, 400, 14, "Empty emails"),
        ({"emails": ["not an address"]}, 422, 422, "Wrong email parameter"),
        ({"emails": [{"comment": "no address"}]}, 422, 422, "Wrong email parameter"),
        ({"emails": [12]}, 422, 422, "Wrong email parameter"),
        ({"emails": ["a\x00b@example.org"]}, 422, 422, "Wrong email parameter"),
        ({"emails": "[1, 2"}, 422, 999, "Badly formed incoming data"),
        ({"emails": "nonsense"}, 422, 999, "Badly formed incoming data"),
        ({"emails": 5}, 422, 422, "Wrong emails parameter"),
    ],
)
def test_refusals_in_the_sendpulse_shape(
    server: RunningServer, method: str, body: Any, status: int, code: int, message: str
) -> None:
    tenant = server.tenant()
    answer = call(server, tenant, method, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json() == {"error_code": code, "message": message}


def test_more_addresses_than_allowed_are_refused(tmp_path: Any) -> None:
    from tests.support.server import running_server

    with running_server(
        f"sqlite:///{tmp_path / 'u.db'}", tmp_path / "var", max_unsubscribe_emails=2
    ) as server:
        tenant = server.tenant()
        three = ["a@x.org", "b@x.org", "c@x.org"]
        answer = call(server, tenant, "POST", json={"emails": three})
        assert answer.status_code == 422
        assert answer.json()["message"] == "Too many emails: at most 2 in one request"
        assert call(server, tenant, "POST", json={"emails": three[:2]}).status_code == 200


def test_a_body_over_the_endpoints_limit_is_413(tmp_path: Any) -> None:
    from tests.support.server import running_server

    with running_server(
        f"sqlite:///{tmp_path / 'u.db'}",
        tmp_path / "var",
        max_unsubscribe_emails=1,
        http_small_body_bytes=1024,
    ) as server:
        tenant = server.tenant()
        big = {"emails": [{"email": "a@x.org", "comment": "x" * 4000}]}
        answer = call(server, tenant, "POST", json=big)
        assert answer.status_code == 413
        assert answer.json()["error_code"] == 413


def test_search_refusals(server: RunningServer) -> None:
    tenant = server.tenant()
    for params, message in [
        ({}, "Empty email parameter"),
        ({"email": " "}, "Empty email parameter"),
        ({"email": "nobody"}, "Wrong email parameter"),
    ]:
        answer = call(server, tenant, "GET", "/smtp/unsubscribe/search", params=params)
        assert answer.status_code == 422
        assert answer.json() == {"error_code": 422, "message": message}


def test_every_unsubscribe_endpoint_wants_a_credential(server: RunningServer) -> None:
    with server.client() as http:
        for method, path in [
            ("POST", "/smtp/unsubscribe"),
            ("DELETE", "/smtp/unsubscribe"),
            ("GET", "/smtp/unsubscribe"),
            ("GET", "/smtp/unsubscribe/search?email=a@x.org"),
        ]:
            assert http.request(method, path).status_code == 401


def test_one_tenants_list_is_invisible_to_another(server: RunningServer) -> None:
    one, other = server.tenant("one"), server.tenant("other")
    assert call(server, one, "POST", json={"emails": ENTRIES}).status_code == 200
    assert listed(server, other) == []
    assert searched(server, other, "ann@example.org") is False
    # the other's DELETE takes nothing off the first's list
    assert call(server, other, "DELETE", json={"emails": ["ann@example.org"]}).status_code == 200
    assert searched(server, one, "ann@example.org") is True


def test_list_pages_newest_first_and_filters_by_day(server: RunningServer) -> None:
    tenant = server.tenant()
    days = [datetime(2026, 3, d, 12, 0, 0) for d in (1, 2, 3)]
    for n, day in enumerate(days):
        entry = Suppress(f"u{n}@example.org", unsubscribe_by_link=True)
        server.runtime.db.write_sync(
            lambda c, e=entry, d=day: suppression.add(c, tenant.id, [e], d)
        )
    assert [r["email"] for r in listed(server, tenant)] == [
        "u2@example.org",
        "u1@example.org",
        "u0@example.org",
    ]
    assert [r["email"] for r in listed(server, tenant, limit=1, offset=1)] == ["u1@example.org"]
    one_day = listed(server, tenant, date="2026-03-02")
    assert one_day == [
        {
            "email": "u1@example.org",
            "unsubscribe_by_link": 1,
            "unsubscribe_by_user": 0,
            "spam_complaint": 0,
            "date": "2026-03-02 12:00:00",
        }
    ]
    assert listed(server, tenant, date="2026-03-09") == []
    bad = call(server, tenant, "GET", params={"date": "yesterday"})
    assert (bad.status_code, bad.json()["error_code"]) == (400, 799)
    bad = call(server, tenant, "GET", params={"limit": "-1"})
    assert (bad.status_code, bad.json()["error_code"]) == (422, 422)


def test_an_address_that_only_bounced_is_not_on_the_unsubscribe_list(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    entry = Suppress("gone@example.org", bounced=True, bounce_category="bad_mailbox")
    now = server.runtime.clock.now()
    server.runtime.db.write_sync(lambda c: suppression.add(c, tenant.id, [entry], now))
    assert listed(server, tenant) == []
    assert searched(server, tenant, "gone@example.org") is False
    # ... but DELETE takes it off the suppression list all the same
    assert call(server, tenant, "DELETE", json={"emails": ["gone@example.org"]}).status_code == 200
    found = server.runtime.db.read_sync(
        lambda c: suppression.listed_among(c, tenant.id, ["gone@example.org"])
    )
    assert found == {}


# -- the suppression step of the send -------------------------------------------------------


def _rows(server: RunningServer, public_id: str) -> list[Any]:
    def query(conn: sa.Connection) -> list[Any]:
        message = sa.select(deliveries.c.message_id).where(deliveries.c.public_id == public_id)
        return list(
            conn.execute(
                sa.select(
                    deliveries.c.recipient,
                    deliveries.c.status,
                    deliveries.c.smtp_answer_data,
                    delivery_queue.c.delivery_id,
                )
                .select_from(
                    deliveries.outerjoin(
                        delivery_queue, delivery_queue.c.delivery_id == deliveries.c.id
                    )
                )
                .where(deliveries.c.message_id == message.scalar_subquery())
                .order_by(deliveries.c.id)
            )
        )

    return server.runtime.db.read_sync(query)


def test_a_send_to_a_suppressed_address_is_accepted_recorded_and_never_queued(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    now = server.runtime.clock.now()
    entries = [
        Suppress("left@example.org", unsubscribe_by_link=True),
        Suppress("gone@example.org", bounced=True, bounce_category="bad_mailbox"),
        Suppress("angry@example.org", spam_complaint=True),
    ]
    server.runtime.db.write_sync(lambda c: suppression.add(c, tenant.id, entries, now))
    payload = mail(
        tenant,
        to=[{"email": "Left@Example.org"}, {"email": "rita@example.org"}],
        cc=[{"email": "gone@example.org"}],
        bcc=[{"email": "angry@example.org"}],
    )
    answer = send(server, tenant, {"email": payload})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] is True
    rows = _rows(server, answer.json()["id"])
    assert [(r.recipient, r.status, r.smtp_answer_data) for r in rows] == [
        ("left@example.org", "suppressed", "suppressed: unsubscribed by link"),
        ("rita@example.org", "queued", ""),
        ("gone@example.org", "suppressed", "suppressed: hard bounce (bad_mailbox)"),
        ("angry@example.org", "suppressed", "suppressed: spam complaint"),
    ]
    # only the one that is not suppressed is in the delivery queue
    assert [r.delivery_id is not None for r in rows] == [False, True, False, False]
    # and the log reports them as such
    with server.client() as http:
        record = http.get(f"/smtp/emails/{answer.json()['id']}", headers=tenant.auth).json()
    assert record["status"] == "suppressed"
    assert record["smtp_answer_code_explain"] == "Suppressed"
    assert record["smtp_answer_data"] == "suppressed: unsubscribed by link"


def test_a_send_whose_every_recipient_is_suppressed_is_still_accepted(
    server: RunningServer,
) -> None:
    tenant = server.tenant()
    assert call(server, tenant, "POST", json={"emails": ["rita@example.org"]}).status_code == 200
    answer = send(server, tenant, {"email": mail(tenant)})
    assert answer.status_code == 200, answer.text
    rows = _rows(server, answer.json()["id"])
    assert [(r.status, r.smtp_answer_data) for r in rows] == [
        ("suppressed", "suppressed: unsubscribed by the sender")
    ]
    assert rows[0].delivery_id is None


def test_another_tenants_list_does_not_hold_this_tenants_mail(server: RunningServer) -> None:
    one, other = server.tenant("one"), server.tenant("other")
    assert call(server, other, "POST", json={"emails": ["rita@example.org"]}).status_code == 200
    answer = send(server, one, {"email": mail(one)})
    assert [r.status for r in _rows(server, answer.json()["id"])] == ["queued"]


def test_the_same_address_twice_in_one_request_is_one_entry_on_every_engine(
    any_server: RunningServer,
) -> None:
    tenant = any_server.tenant()
    twice = [{"email": "Ann@x.org", "comment": "first"}, {"email": "ann@X.org", "comment": "last"}]
    assert call(any_server, tenant, "POST", json={"emails": twice}).status_code == 200
    assert [r["email"] for r in listed(any_server, tenant)] == ["ann@x.org"]
    assert call(any_server, tenant, "POST", json={"emails": ["a\x00@x.org"]}).status_code == 422
    found = call(any_server, tenant, "GET", "/smtp/unsubscribe/search", params={"email": "a\x00@x"})
    assert found.status_code == 422
    dupes = ["ann@x.org", "ANN@x.org"]
    assert call(any_server, tenant, "DELETE", json={"emails": dupes}).status_code == 200
    assert listed(any_server, tenant) == []


def test_the_most_addresses_with_long_comments_fit_the_body_limit(server: RunningServer) -> None:
    tenant = server.tenant()
    most = server.runtime.settings.max_unsubscribe_emails
    local = "x" * 64
    entries = [
        {"email": f"{local}{n}@{'d' * 240}.example.org", "comment": "c" * 1024} for n in range(most)
    ]
    for body in ({"json": {"emails": json.dumps(entries)}}, {"data": {"emails": php(entries)}}):
        answer = call(server, tenant, "POST", **body)
        assert answer.status_code == 200, answer.text[:200]
    assert len(listed(server, tenant, limit=500)) == 500


def test_each_held_recipient_leaves_one_log_line_naming_the_decision(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = server.tenant()
    assert call(server, tenant, "POST", json={"emails": ["rita@example.org"]}).status_code == 200
    with caplog.at_level("INFO", logger="mailpulse.core.submit"):
        answer = send(server, tenant, {"email": mail(tenant, cc=[{"email": "sam@example.org"}])})
    lines = [r.getMessage() for r in caplog.records if r.name == "mailpulse.core.submit"]
    assert lines == [
        "recipient is on the suppression list (unsubscribed by the sender), holding: "
        f"delivery {answer.json()['id']}, account {tenant.id}, rita@example.org"
    ]
