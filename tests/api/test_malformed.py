"""However malformed the request, the answer is a clear SendPulse-shaped error, never a 5xx.

Hypothesis throws random bodies, encodings, queries and paths at a real server; the server
fixture itself also fails any test whose requests drew a 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import phpserialize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server import running_server

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
EMAIL_KEYS = st.sampled_from(
    [
        "html",
        "text",
        "subject",
        "from",
        "to",
        "cc",
        "сс",
        "bcc",
        "reply_to",
        "template",
        "attachments",
        "attachments_binary",
        "auto_plain_text",
        "auto_plaint_text",
    ]
)
EMAIL = st.dictionaries(EMAIL_KEYS, JSON, max_size=8)
ADDRESSY = st.one_of(
    st.text(max_size=20),
    st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=8), st.text(max_size=8)),
    st.just("ok@example.org"),
)
ALMOST_VALID = st.fixed_dictionaries(
    {
        "subject": st.text(max_size=40),
        "from": st.fixed_dictionaries({"email": ADDRESSY, "name": st.text(max_size=10)}),
        "to": st.lists(st.fixed_dictionaries({"email": ADDRESSY}), max_size=3),
    },
    optional={
        "html": st.text(max_size=40),
        "text": st.text(max_size=40),
        "attachments_binary": st.dictionaries(st.text(max_size=8), st.text(max_size=12)),
        "template": JSON,
    },
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALLOWED = {200, 400, 401, 404, 405, 422}


def _check(answer: Any) -> None:
    assert answer.status_code in ALLOWED, (answer.status_code, answer.text)
    body = answer.json()
    if answer.status_code != 200:
        assert isinstance(body["error_code"], int) and isinstance(body["message"], str)


def test_random_email_objects_in_every_encoding_get_clear_answers(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'f.db'}", tmp_path) as server:
        tenant = server.tenant(sender="ok@example.org")
        with server.client(headers=tenant.auth) as http:

            @SETTINGS
            @given(
                email=EMAIL | ALMOST_VALID, how=st.sampled_from(["object", "json", "php", "form"])
            )
            def check(email: dict[str, Any], how: str) -> None:
                if how == "object":
                    answer = http.post("/smtp/emails", json={"email": email})
                elif how == "json":
                    answer = http.post("/smtp/emails", json={"email": json.dumps(email)})
                elif how == "php":
                    encoded = phpserialize.dumps(_php_safe(email)).decode("utf-8", "replace")
                    answer = http.post("/smtp/emails", json={"email": encoded})
                else:
                    answer = http.post("/smtp/emails", data={"email": json.dumps(email)})
                _check(answer)

            check()


def test_random_bytes_and_content_types_get_clear_answers(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'g.db'}", tmp_path) as server:
        tenant = server.tenant()
        with server.client(headers=tenant.auth) as http:

            @SETTINGS
            @given(
                body=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()),
                content_type=st.sampled_from(
                    [
                        "application/json",
                        "application/x-www-form-urlencoded",
                        "multipart/form-data; boundary=xyz",
                        "multipart/form-data",
                        "text/plain",
                        "",
                    ]
                ),
                path=st.sampled_from(
                    ["/smtp/emails", "/smtp/emails/info", "/oauth/access_token", "/smtp/emails/x"]
                ),
                method=st.sampled_from(["POST", "GET", "DELETE", "PUT"]),
            )
            def check(body: bytes, content_type: str, path: str, method: str) -> None:
                headers = {"Content-Type": content_type} if content_type else {}
                _check(http.request(method, path, content=body, headers=headers))

            check()


def test_random_queries_and_paths_get_clear_answers(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'h.db'}", tmp_path) as server:
        tenant = server.tenant()
        with server.client(headers=tenant.auth) as http:

            @SETTINGS
            @given(
                query=st.dictionaries(
                    st.sampled_from(["limit", "offset", "from", "to", "sender", "recipient"]),
                    st.text(max_size=20) | st.integers().map(str),
                ),
                raw=st.text(max_size=40),
                segment=st.text(min_size=1, max_size=30),
            )
            def check(query: dict[str, str], raw: str, segment: str) -> None:
                _check(http.get("/smtp/emails", params=query))
                _check(http.get(f"/smtp/emails?{quote(raw, safe='=&%+{}:,')}"))
                _check(http.get("/smtp/emails/" + quote(segment, safe="@+")))

            check()


def _php_safe(value: Any) -> Any:
    """phpserialize cannot encode None inside keys or floats as keys: keep it to its domain."""
    if isinstance(value, dict):
        return {str(k): _php_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_php_safe(v) for v in value]
    return value
