"""Inputs that were 500s (issue 6) get a 4xx in the SendPulse shape; an unexpected error is one
log line with a request id, and the 500 answer carries that id."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mailpulse.api import emails
from tests.support.server import RunningServer, Tenant

LONE_SURROGATE = "\\ud800"  # the six characters of a JSON escape


@pytest.fixture
def tenant(server: RunningServer) -> Tenant:
    return server.tenant()


def assert_sendpulse_4xx(answer: Any) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    body = answer.json()
    assert isinstance(body["error_code"], int) and isinstance(body["message"], str)


@pytest.mark.parametrize(
    "query",
    [
        "offset=9223372036854775808",
        "limit=9223372036854775808",
        "offset=99999999999999999999999999",
        "to=9999-12-31",
        "to=9999-12-31 23:59:59",
        "to_date=9999-12-31",
    ],
)
def test_out_of_range_log_query_is_a_4xx(server: RunningServer, tenant: Tenant, query: str) -> None:
    with server.client() as http:
        answer = http.get(f"/smtp/emails?{query}", headers=tenant.auth)
    assert_sendpulse_4xx(answer)


def test_largest_offset_a_database_takes_is_an_empty_page(
    server: RunningServer, tenant: Tenant
) -> None:
    with server.client() as http:
        answer = http.get("/smtp/emails?offset=9223372036854775807", headers=tenant.auth)
    assert (answer.status_code, answer.json()) == (200, [])


def test_nesting_490_deep_inside_email_is_a_4xx(server: RunningServer, tenant: Tenant) -> None:
    nested = '{"a":' * 490 + "1" + "}" * 490
    body = '{"email": {"subject": "s", "text": "t", "to": [], "template": ' + nested + "}}"
    with server.client() as http:
        answer = http.post("/smtp/emails", content=body, headers=tenant.auth)
    assert_sendpulse_4xx(answer)


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_lone_surrogate_in_token_request_is_a_4xx(server: RunningServer, field: str) -> None:
    fields = {"grant_type": '"client_credentials"', "client_id": '"x"', "client_secret": '"y"'}
    fields[field] = f'"a{LONE_SURROGATE}b"'
    body = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    with server.client() as http:
        answer = http.post(
            "/oauth/access_token", content=body, headers={"Content-Type": "application/json"}
        )
    assert_sendpulse_4xx(answer)


@pytest.mark.parametrize(
    "email",
    [
        '{"subject": "a{S}b", "text": "t", "to": [{"email": "r@example.org"}]}',
        '{"subject": "s", "html": "<p>{S}</p>", "to": [{"email": "r@example.org"}]}',
        '{"subject": "s", "text": "a{S}", "to": [{"email": "r@example.org"}]}',
        '{"subject": "s", "text": "t", "to": [{"email": "r@example.org"}],'
        ' "attachments": {"a.txt": "x{S}"}}',
        '{"subject": "s", "text": "t", "to": [{"email": "r@example.org"}],'
        ' "attachments_binary": {"a{S}.bin": "AAAA"}}',
    ],
)
def test_lone_surrogate_in_an_email_is_a_4xx(
    server: RunningServer, tenant: Tenant, email: str
) -> None:
    email = email.replace("{S}", LONE_SURROGATE).replace(
        '"to"', f'"from": {{"email": "{tenant.sender}"}}, "to"'
    )
    with server.client() as http:
        answer = http.post("/smtp/emails", content='{"email": ' + email + "}", headers=tenant.auth)
    assert_sendpulse_4xx(answer)


def test_lone_surrogate_in_info_ids_is_a_4xx(server: RunningServer, tenant: Tenant) -> None:
    body = '{"emails": ["q3k9x1-0b7mza-4f", "a' + LONE_SURROGATE + '"]}'
    with server.client() as http:
        answer = http.post("/smtp/emails/info", content=body, headers=tenant.auth)
    assert_sendpulse_4xx(answer)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_unexpected_error_is_one_log_line_with_a_request_id(
    server: RunningServer, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr(emails, "log_filter", broken)
    collect = Collect()
    loggers = [logging.getLogger(name) for name in ("mailpulse", "uvicorn", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(collect)
    try:
        with server.client() as http:
            answer = http.get("/smtp/emails", headers=tenant.auth)
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    server.recorder.server_errors.clear()  # this 500 is the point of the test

    request_id = answer.headers["x-request-id"]
    assert answer.status_code == 500
    assert answer.json() == {
        "error_code": 500,
        "message": f"Internal error (request id {request_id})",
    }
    errors = [r for r in collect.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert f"request_id={request_id}" in line and "RuntimeError" in line
    assert "\n" not in line and errors[0].exc_info is None


# -- NUL (U+0000): PostgreSQL refuses it in a text column, SQLite keeps it; found by schemathesis.
NUL = "\\u0000"  # the six characters of a JSON escape


def test_nul_in_a_client_id_is_an_unknown_client(any_server: RunningServer) -> None:
    body = '{"grant_type":"client_credentials","client_id":"a' + NUL + 'b","client_secret":"x"}'
    with any_server.client() as http:
        answer = http.post(
            "/oauth/access_token", content=body, headers={"Content-Type": "application/json"}
        )
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("query", ["sender=a%00b@example.org", "recipient=a%00b@example.org"])
def test_nul_in_a_log_filter_matches_nothing(any_server: RunningServer, query: str) -> None:
    tenant = any_server.tenant()
    with any_server.client() as http:
        answer = http.get(f"/smtp/emails?{query}", headers=tenant.auth)
    assert (answer.status_code, answer.json()) == (200, [])


def test_nul_in_an_email_id_is_no_such_email(any_server: RunningServer) -> None:
    tenant = any_server.tenant()
    with any_server.client() as http:
        one = http.get("/smtp/emails/a%00b", headers=tenant.auth)
        info = http.post(
            "/smtp/emails/info", content='{"emails": ["a' + NUL + 'b"]}', headers=tenant.auth
        )
    assert (one.status_code, one.json()["error_code"]) == (400, 14)
    assert (info.status_code, info.json()["error_code"]) == (400, 14)


@pytest.mark.parametrize(
    "email",
    [
        '{"subject": "a{N}b", "text": "t", "to": [{"email": "r@example.org"}]}',
        '{"subject": "s", "text": "a{N}b", "to": [{"email": "r@example.org"}]}',
        '{"subject": "s", "text": "t", "to": [{"email": "r@example.org", "name": "a{N}"}]}',
    ],
)
def test_nul_in_an_emails_text_is_refused_as_badly_formed(
    any_server: RunningServer, email: str
) -> None:
    tenant = any_server.tenant()
    sender = '"from": {"email": "' + tenant.sender + '"}, '
    body = '{"email": {' + sender + email.replace("{N}", NUL)[1:] + "}"
    with any_server.client() as http:
        answer = http.post("/smtp/emails", content=body, headers=tenant.auth)
        log = http.get("/smtp/emails", headers=tenant.auth).json()
    assert (answer.status_code, answer.json()["error_code"]) == (422, 999)
    assert log == []


def test_get_on_the_info_path_is_a_405_naming_post(server: RunningServer, tenant: Tenant) -> None:
    with server.client() as http:
        answer = http.get("/smtp/emails/info", headers=tenant.auth)
    assert answer.status_code == 405
    assert "POST" in answer.headers["allow"]
