"""GET /smtp/bounces/day and /total at the edges: the documented shape exactly, the extreme
values a fuzzer sends (never a 5xx, on each engine), and the day's bounds. The whole story, from
an SMTP refusal to the list and the suppression list, is tests/e2e/test_bounces.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mailpulse.api.bounces import window
from mailpulse.api.openapi import build
from mailpulse.core.clock import FixedClock
from mailpulse.core.errors import ApiError
from mailpulse.store import bounces
from tests.support.server import RunningServer, Tenant, running_server

NOW = datetime(2031, 2, 3, 4, 5, 6, 789)


def listed(
    server: RunningServer, tenant: Tenant, email: str, code: int | None, at: datetime
) -> None:
    bounce = bounces.NewBounce(
        account_id=tenant.id,
        delivery_id=None,
        email_to=email,
        sender=tenant.sender,
        subject="Subject",
        send_date=None,
        code=code,
        subcode="5.1.1" if code else "",
        data="said no",
        category="bad_mailbox",
        source="dsn",
        suppress=False,
    )
    server.runtime.db.write_sync(lambda conn: bounces.record(conn, bounce, at))


def test_a_listed_bounce_matches_the_documented_shape_exactly(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    with running_server(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, clock=clock) as server:
        tenant = server.tenant()
        tenant.token = server.api_key(tenant)[1]  # a static key does not expire with the clock
        listed(server, tenant, "A@Example.org", 550, NOW - timedelta(hours=1))
        listed(server, tenant, "b@example.org", None, NOW)  # a report that gave no code
        with server.client() as http:
            page = http.get("/smtp/bounces/day", headers=tenant.auth).json()
            total = http.get("/smtp/bounces/day/total", headers=tenant.auth).json()
    components = build()["components"]

    def check(instance: Any, name: str) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        jsonschema.Draft202012Validator(schema).validate(instance)

    check(page, "BounceList")
    assert set(page) == set(components["schemas"]["BounceList"]["required"])
    for entry in page["emails"]:
        assert set(entry) == set(components["schemas"]["Bounce"]["required"])
    assert page["emails"] == [
        {
            "email_to": "b@example.org",
            "sender": tenant.sender,
            "send_date": "2031-02-03 04:05:06",  # no send date known: when it was listed
            "subject": "Subject",
            "smtp_answer_code": 0,
            "smtp_answer_subcode": "",
            "smtp_answer_data": "said no",
        },
        {
            "email_to": "a@example.org",
            "sender": tenant.sender,
            "send_date": "2031-02-03 03:05:06",
            "subject": "Subject",
            "smtp_answer_code": 550,
            "smtp_answer_subcode": "5.1.1",
            "smtp_answer_data": "said no",
        },
    ]
    assert total == {"total": 2}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("offset=9223372036854775807", 200),
        ("limit=9223372036854775807", 200),
        ("limit=9223372036854775808", 422),
        ("offset=-1", 422),
        ("limit=1.5", 422),
        ("date=9999-12-31", 200),
        ("date=0001-01-01", 200),
        ("date=2031-02-03%2023:59", 200),
        ("date=a%00b", 400),
        ("date=2031-02-30", 400),
    ],
)
def test_extreme_parameters_are_answered_never_a_5xx(
    any_server: RunningServer, query: str, status: int
) -> None:
    tenant = any_server.tenant()
    with any_server.client() as http:
        answer = http.get(f"/smtp/bounces/day?{query}", headers=tenant.auth)
        counted = http.get(f"/smtp/bounces/day/total?{query}", headers=tenant.auth)
    assert answer.status_code == status, answer.text
    if query.startswith("date="):
        assert counted.status_code == status, counted.text


def test_the_day_window() -> None:
    assert window(None, NOW) == (NOW - timedelta(days=1), NOW + timedelta(microseconds=1))
    assert window("", NOW) == window(None, NOW)
    assert window("2031-01-31", NOW) == (datetime(2031, 1, 31), datetime(2031, 2, 1))
    assert window("2031-01-31 23:59:59", NOW) == (datetime(2031, 1, 31), datetime(2031, 2, 1))
    assert window("9999-12-31", NOW) == (datetime(9999, 12, 31), datetime.max)
    with pytest.raises(ApiError) as refused:
        window("31.01.2031", NOW)
    assert (refused.value.status, refused.value.error_code) == (400, 799)
