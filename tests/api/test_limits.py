"""Bounded work per request: each endpoint's body limit (413 on Content-Length and while the body
streams in), authentication before the body, fields and depth counted before anything is built.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpulse.api import compat
from mailpulse.core import validate
from mailpulse.core.validate import Limits, parse_email
from tests.support.server import RunningServer, Tenant, running_server

TOO_LARGE = {"error_code": 413, "message": "Request body too large for this endpoint"}
TOO_MANY = {"error_code": 413, "message": "Too many fields in the request"}
TOO_DEEP = {"error_code": 999, "message": "Badly formed incoming data: nested too deeply"}


def raw_request(server: RunningServer, head: bytes, body: bytes = b"", timeout: float = 9) -> bytes:
    """Send bytes as they are (a Content-Length that lies, a body cut short) and read the answer
    up to its end or the connection's close."""
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        head_part, _, rest = answer.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head_part.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head_part + b"\r\n\r\n" + rest


def status_and_json(answer: bytes) -> tuple[int, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def chunked(body: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
def tenant(server: RunningServer) -> Tenant:
    return server.tenant()


# -- per-endpoint body limits ---------------------------------------------------------------------
def test_token_endpoint_refuses_a_large_body_on_its_content_length(server: RunningServer) -> None:
    # 37 MB announced, nothing sent: answered at once, without waiting for (or reading) the body.
    head = (
        b"POST /oauth/access_token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 37000000\r\n\r\n"
    )
    status, body = status_and_json(raw_request(server, head))
    assert (status, body) == (413, TOO_LARGE)


def test_token_endpoint_counts_a_streamed_body(server: RunningServer) -> None:
    body = json.dumps({"grant_type": "client_credentials", "pad": "x" * 20_000}).encode()
    with server.client() as http:
        answer = http.post(
            "/oauth/access_token",
            content=chunked(body),
            headers={"Content-Type": "application/json"},
        )
    assert (answer.status_code, answer.json()) == (413, TOO_LARGE)
    assert answer.headers["connection"] == "close"  # the rest of the body is not read


def test_token_request_of_ordinary_size_still_works(server: RunningServer, tenant: Tenant) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
    }
    with server.client() as http:
        assert http.post("/oauth/access_token", data=form).status_code == 200
        assert http.post("/oauth/access_token", files={k: (None, v) for k, v in form.items()})


@pytest.mark.parametrize("path", ["/smtp/emails", "/smtp/emails/total", "/smtp/emails/abc"])
def test_log_queries_refuse_a_body_of_more_than_a_few_kb(
    server: RunningServer, tenant: Tenant, path: str
) -> None:
    body = json.dumps({"limit": 10, "pad": "x" * 10_000})
    with server.client() as http:
        answer = http.request("GET", path, content=body, headers=tenant.auth)
        small = http.request("GET", path, content=json.dumps({"limit": 10}), headers=tenant.auth)
    assert (answer.status_code, answer.json()) == (413, TOO_LARGE)
    assert small.status_code in (200, 400)  # 400: "No such email" for the unknown id


def test_info_takes_max_info_ids_ids_and_no_more_bytes(
    server: RunningServer, tenant: Tenant
) -> None:
    ids = ["q3k9x1-0b7mza-4f"] * 500
    with server.client() as http:
        fits = http.post("/smtp/emails/info", json={"emails": ids}, headers=tenant.auth)
        too_big = http.post(
            "/smtp/emails/info", json={"emails": ids, "pad": "x" * 80_000}, headers=tenant.auth
        )
    assert fits.json() == {"error_code": 14, "message": "No such emails"}
    assert (too_big.status_code, too_big.json()) == (413, TOO_LARGE)


def test_send_body_limit_is_the_message_size_plus_encoding(tmp_path: Path) -> None:
    with running_server(
        f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "var", max_message_bytes=100_000
    ) as server:
        tenant = server.tenant()
        email = {
            "subject": "s",
            "from": {"email": tenant.sender},
            "to": [{"email": "rcpt@example.org"}],
        }
        with server.client() as http:
            over = http.post(
                "/smtp/emails",
                content=chunked(json.dumps({"email": email | {"text": "x" * 1_300_000}}).encode()),
                headers=tenant.auth | {"Content-Type": "application/json"},
            )
            # Larger than the small limits, well within the send's: accepted.
            fits = http.post(
                "/smtp/emails", json={"email": email | {"text": "x" * 60_000}}, headers=tenant.auth
            )
    assert (over.status_code, over.json()) == (413, TOO_LARGE)
    assert fits.json()["result"] is True


def test_send_authenticates_before_reading_the_body(server: RunningServer) -> None:
    head = (
        b"POST /smtp/emails HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 30000000\r\n\r\n"
    )
    status, body = status_and_json(raw_request(server, head, b'{"email": {'))
    assert (status, body["error_code"]) == (401, 401)


# -- fields and depth, counted before anything is built -------------------------------------------
def test_form_with_a_great_many_fields_is_refused_before_parsing(
    server: RunningServer, tenant: Tenant
) -> None:
    body = b"&".join([b"a=1"] * 200_000) + b"&email=x"
    with server.client() as http:
        answer = http.post(
            "/smtp/emails",
            content=body,
            headers=tenant.auth | {"Content-Type": "application/x-www-form-urlencoded"},
        )
        token = http.post(
            "/oauth/access_token",
            content=b"&".join([b"a=1"] * 200_000),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert (answer.status_code, answer.json()) == (413, TOO_MANY)
    assert (token.status_code, token.json()) == (413, TOO_LARGE)  # its body limit comes first


def test_multipart_with_a_great_many_parts_is_refused_before_parsing(
    server: RunningServer, tenant: Tenant
) -> None:
    part = b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
    body = part * 20_000 + b"--XyZ--\r\n"
    with server.client() as http:
        answer = http.post(
            "/smtp/emails",
            content=body,
            headers=tenant.auth | {"Content-Type": "multipart/form-data; boundary=XyZ"},
        )
    assert (answer.status_code, answer.json()) == (413, TOO_MANY)


def test_json_with_a_great_many_values_is_refused_before_parsing(
    server: RunningServer, tenant: Tenant
) -> None:
    email = {"subject": "s", "to": [{"email": f"u{i}@example.org"} for i in range(50_000)]}
    with server.client() as http:
        answer = http.post("/smtp/emails", json={"email": email}, headers=tenant.auth)
        as_string = http.post(
            "/smtp/emails", json={"email": json.dumps(email)}, headers=tenant.auth
        )
    assert (answer.status_code, answer.json()) == (413, TOO_MANY)
    assert (as_string.status_code, as_string.json()) == (413, TOO_MANY)


def test_php_serialized_email_with_a_great_many_members_is_refused(
    server: RunningServer, tenant: Tenant
) -> None:
    members = "".join(f'i:{i};a:1:{{s:5:"email";s:13:"a@example.com";}}' for i in range(20_000))
    php = f'a:2:{{s:7:"subject";s:1:"s";s:2:"to";a:20000:{{{members}}}}}'
    with server.client() as http:
        answer = http.post("/smtp/emails", json={"email": php}, headers=tenant.auth)
    assert (answer.status_code, answer.json()) == (413, TOO_MANY)


@pytest.mark.parametrize("depth", [33, 490, 5000])
def test_deep_nesting_inside_email_is_refused(
    server: RunningServer, tenant: Tenant, depth: int
) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"email": {"subject": "s", "text": "t", "to": ' + nested + "}}"
    php_nested = "a:1:{i:0;" * 40 + "N;" + "}" * 40
    with server.client() as http:
        as_json = http.post("/smtp/emails", content=body, headers=tenant.auth)
        as_php = http.post("/smtp/emails", json={"email": php_nested}, headers=tenant.auth)
    assert (as_json.status_code, as_json.json()) == (422, TOO_DEEP)
    assert (as_php.status_code, as_php.json()) == (422, TOO_DEEP)


def test_ordinary_nesting_in_template_variables_is_accepted(
    server: RunningServer, tenant: Tenant
) -> None:
    variables: dict[str, Any] = {"order": {"lines": [{"item": {"name": "x", "tags": ["a"]}}]}}
    email = {
        "subject": "s",
        "text": "t",
        "from": {"email": tenant.sender},
        "to": [{"email": "rcpt@example.org"}],
        "template": {"variables": variables},
    }
    with server.client() as http:
        answer = http.post("/smtp/emails", json={"email": email}, headers=tenant.auth)
    assert answer.json()["result"] is True


def test_recipients_are_counted_before_any_address_is_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[str] = []
    real = validate.normalise_address

    def counting(value: str) -> str | None:
        checked.append(value)
        return real(value)

    monkeypatch.setattr(validate, "normalise_address", counting)
    email = {
        "subject": "s",
        "text": "t",
        "from": {"email": "a@example.com"},
        "to": [{"email": "not an address"}] * 60,
        "bcc": [{"email": f"u{i}@example.org"} for i in range(60)],
    }
    with pytest.raises(validate.ApiError) as raised:
        parse_email(email, Limits(max_recipients=100))
    assert (raised.value.error_code, raised.value.message) == (550, "5.5.3 Too many recipients")
    assert checked == []


JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
TRICKY_TEXT = st.text(alphabet='ab,[]{}"\\:\n', max_size=12)
TRICKY_JSON = st.recursive(
    TRICKY_TEXT | st.integers() | st.none(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(TRICKY_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@given(TRICKY_JSON)
def test_structure_is_counted_outside_strings_only(value: Any) -> None:
    data = json.dumps(value).encode()
    structure = JSON_STRING.sub(b"", data)  # the slow, obviously right way
    items = sum(structure.count(c) for c in (b",", b"[", b"{"))
    compat.check_json_shape(data, compat.Shape(max_items=items, max_depth=100))
    with pytest.raises(compat.ApiError):
        compat.check_json_shape(data, compat.Shape(max_items=items - 1, max_depth=100))
