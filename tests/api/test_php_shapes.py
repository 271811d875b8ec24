"""Every shape the PHP clients send (issue 7), over real HTTP: PHP arrays with gaps (after
``array_filter`` / ``array_unique``) as JSON objects and ``serialize()`` strings, and bracketed
form fields as ``http_build_query`` / Guzzle ``form_params`` write them, on every endpoint;
hostile bracket forms refused with a 4xx, never a 500.

The bodies are built as PHP writes them (tests/support/php.py); where a ``php`` binary exists,
the last tests check those builders against real PHP.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.api.test_log import sent
from tests.api.test_send import b64, stored
from tests.support import php
from tests.support.php import http_build_query, serialize
from tests.support.server import RunningServer, Tenant

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOO_MANY = {"error_code": 413, "message": "Too many fields in the request"}
TOO_DEEP = {"error_code": 999, "message": "Badly formed incoming data: nested too deeply"}
BADLY_FORMED = {"error_code": 999, "message": "Badly formed incoming data"}


@pytest.fixture
def tenant(server: RunningServer) -> Tenant:
    return server.tenant()


def post(
    server: RunningServer, tenant: Tenant, path: str, *, form: str | None = None, **kw: Any
) -> httpx.Response:
    with server.client() as http:
        if form is not None:
            headers = {**tenant.auth, **FORM}
            return http.post(path, headers=headers, content=form.encode(), **kw)
        return http.post(path, headers=tenant.auth, **kw)


def ids_of(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [record["id"] for record in answer.json()]


# -- /smtp/emails/info: the id list as a PHP array with gaps ------------------------------------
@pytest.fixture
def three(server: RunningServer, tenant: Tenant) -> list[str]:
    return [sent(server, tenant, f"{name}@example.org") for name in ("a", "b", "c")]


def test_info_takes_a_json_object_with_gapped_integer_keys_in_key_order(
    server: RunningServer, tenant: Tenant, three: list[str]
) -> None:
    a, _b, c = three
    # json_encode(array_filter([$a, '', $c])), keys written out of order too
    for emails in ({"0": a, "2": c}, {"2": c, "0": a}):
        answer = post(server, tenant, "/smtp/emails/info", json={"emails": emails})
        assert ids_of(answer) == [a, c]


def test_info_takes_a_php_serialized_array_with_gaps_in_json_and_in_a_form(
    server: RunningServer, tenant: Tenant, three: list[str]
) -> None:
    a, b, c = three
    wire = serialize({1: b, 3: c, 0: a})  # a:3:{i:1;…i:3;…i:0;…}
    assert ids_of(post(server, tenant, "/smtp/emails/info", json={"emails": wire})) == [a, b, c]
    form = http_build_query({"emails": wire})
    assert ids_of(post(server, tenant, "/smtp/emails/info", form=form)) == [a, b, c]


def test_info_takes_a_json_string_of_a_gapped_object(
    server: RunningServer, tenant: Tenant, three: list[str]
) -> None:
    a, _b, c = three
    form = http_build_query({"emails": json.dumps({"0": a, "5": c})})
    assert ids_of(post(server, tenant, "/smtp/emails/info", form=form)) == [a, c]


def test_info_takes_bracketed_form_fields_and_query_parameters(
    server: RunningServer, tenant: Tenant, three: list[str]
) -> None:
    a, b, c = three
    gapped = http_build_query({"emails": {0: a, 2: c}})  # emails%5B0%5D=…&emails%5B2%5D=…
    assert gapped.startswith("emails%5B0%5D=")
    assert ids_of(post(server, tenant, "/smtp/emails/info", form=gapped)) == [a, c]
    appended = f"emails[]={a}&emails[]={b}"  # Guzzle with a different query builder
    assert ids_of(post(server, tenant, "/smtp/emails/info", form=appended)) == [a, b]
    in_query = post(server, tenant, f"/smtp/emails/info?{http_build_query({'emails': [c, a]})}")
    assert ids_of(in_query) == [c, a]


def test_info_still_refuses_an_empty_or_unusable_php_array(
    server: RunningServer, tenant: Tenant
) -> None:
    for body in ({"emails": {}}, {"emails": {"0": {"x": "y"}}}, {"emails": "a:0:{}"}):
        answer = post(server, tenant, "/smtp/emails/info", json=body)
        assert answer.status_code == 400
        assert answer.json() == {"error_code": 832, "message": "Emails param empty or incorrect"}


# -- /smtp/emails: the email object from PHP -----------------------------------------------------
def php_email(tenant: Tenant) -> dict[str, Any]:
    """What a PHP caller builds: recipients filtered with array_filter (gaps at 1), a file."""
    return {
        "html": b64("<p>Hello <b>PHP</b></p>"),
        "text": "Hello PHP",
        "subject": "From PHP",
        "from": {"name": "Acme", "email": tenant.sender},
        "to": {0: {"name": "Rita", "email": "rita@example.org"}, 2: {"email": "bob@example.org"}},
        "cc": {3: {"email": "carl@example.org"}},
        "attachments": {"notes.txt": "plain text\n"},
        "attachments_binary": {"data.bin": base64.b64encode(b"\x00\x01+/").decode()},
        "auto_plain_text": False,
    }


def check_stored_php_email(server: RunningServer, answer: httpx.Response) -> None:
    assert answer.status_code == 200, answer.text
    msg, rows = stored(server, answer.json()["id"])
    assert [(row.recipient, row.kind) for row in rows] == [
        ("rita@example.org", "to"),
        ("bob@example.org", "to"),
        ("carl@example.org", "cc"),
    ]
    assert msg["Subject"] == "From PHP"
    files = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}
    assert files == {"notes.txt": "plain text\n", "data.bin": b"\x00\x01+/"}


def test_send_takes_the_email_as_bracketed_form_fields(
    server: RunningServer, tenant: Tenant
) -> None:
    form = http_build_query({"email": php_email(tenant)})
    assert "email%5Bto%5D%5B0%5D%5Bemail%5D=rita%40example.org" in form
    assert "email%5Battachments%5D%5Bnotes.txt%5D=plain+text%0A" in form
    check_stored_php_email(server, post(server, tenant, "/smtp/emails", form=form))


def test_send_takes_bracketed_fields_in_a_multipart_body(
    server: RunningServer, tenant: Tenant
) -> None:
    parts = {
        name: (None, value.encode()) for name, value in php.fields({"email": php_email(tenant)})
    }
    assert "email[to][2][email]" in parts
    with server.client() as http:
        answer = http.post("/smtp/emails", headers=tenant.auth, files=parts)
    check_stored_php_email(server, answer)


def test_send_takes_gapped_recipient_objects_in_json_and_in_serialize(
    server: RunningServer, tenant: Tenant
) -> None:
    email = php_email(tenant)
    as_json = json.loads(json.dumps({"email": email}))  # int keys become "0", "2", as in PHP
    check_stored_php_email(server, post(server, tenant, "/smtp/emails", json=as_json))
    check_stored_php_email(
        server,
        post(server, tenant, "/smtp/emails", form=http_build_query({"email": serialize(email)})),
    )


def test_plain_forms_still_work(server: RunningServer, tenant: Tenant) -> None:
    email = json.loads(json.dumps(php_email(tenant)))
    check_stored_php_email(
        server,
        post(server, tenant, "/smtp/emails", form=http_build_query({"email": json.dumps(email)})),
    )
    with server.client() as http:
        token = http.post(
            "/oauth/access_token",
            content=http_build_query(
                {
                    "grant_type": "client_credentials",
                    "client_id": tenant.client_id,
                    "client_secret": tenant.client_secret,
                }
            ).encode(),
            headers=FORM,
        )
    assert token.status_code == 200 and token.json()["token_type"] == "Bearer"


def test_a_php_array_where_the_log_wants_a_string_matches_nothing_and_is_no_500(
    server: RunningServer, tenant: Tenant
) -> None:
    sent(server, tenant, "rita@example.org")
    with server.client() as http:
        plain = http.get("/smtp/emails?limit=5&recipient=rita@example.org", headers=tenant.auth)
        array = http.get("/smtp/emails?limit=5&recipient[]=rita@example.org", headers=tenant.auth)
    assert [record["recipient"] for record in plain.json()] == ["rita@example.org"]
    assert (array.status_code, array.json()) == (200, [])


# -- hostile bracket forms ---------------------------------------------------------------------
def test_bracket_nesting_deeper_than_json_may_is_refused(
    server: RunningServer, tenant: Tenant
) -> None:
    deep = "email" + "[x]" * 32 + "=1"  # 33 levels with the body itself; JSON may have 32
    answer = post(server, tenant, "/smtp/emails", form=deep)
    assert (answer.status_code, answer.json()) == (422, TOO_DEEP)
    very_deep = "emails" + "%5B%5D" * 100_000 + "=1"
    answer = post(server, tenant, "/smtp/emails", form=very_deep)
    assert (answer.status_code, answer.json()) == (422, TOO_DEEP)


def test_bracket_groups_count_against_the_field_limit(
    server: RunningServer, tenant: Tenant
) -> None:
    # 400 fields, far below the 10,000-field limit, but 12,000 objects to build
    form = "&".join(f"e[{i}]" + "[x]" * 29 + "=1" for i in range(400))
    answer = post(server, tenant, "/smtp/emails/info", form=form)
    assert (answer.status_code, answer.json()) == (413, TOO_MANY)
    many = "&".join(["emails[][]=x"] * 3_400)  # 3,400 fields, 10,200 fields and objects
    answer = post(server, tenant, "/smtp/emails/info", form=many)
    assert (answer.status_code, answer.json()) == (413, TOO_MANY)


@pytest.mark.parametrize(
    "form",
    [
        "email=x&email[subject]=y",  # a value, then an object
        "email[subject]=y&email=x",  # an object, then a value
        "email[to]=a@b.example&email[to][0][email]=c@d.example",
        "email[to][0][email]=c@d.example&email[to][0]=a@b.example",
        "emails[]=a&emails[0][x]=b",
    ],
)
def test_conflicting_bracket_shapes_are_badly_formed(
    server: RunningServer, tenant: Tenant, form: str
) -> None:
    for path in ("/smtp/emails", "/smtp/emails/info"):
        answer = post(server, tenant, path, form=form)
        assert (answer.status_code, answer.json()) == (422, BADLY_FORMED)
    with server.client() as http:
        answer = http.get(f"/smtp/emails?{form}", headers=tenant.auth)
        assert (answer.status_code, answer.json()) == (422, BADLY_FORMED)


def test_odd_integer_keys_never_break_anything(server: RunningServer, tenant: Tenant) -> None:
    huge = "1" * 5000  # int() of this raises in Python: it must not be converted
    bodies: list[dict[str, Any]] = [
        {"json": {"email": {"to": {huge: {"email": "a@b.example"}}}}},
        {"json": {"emails": {huge: "x", "0": "y"}}},
        {"form": f"emails[{huge}]=x&emails[]=y"},
        {"form": "emails[01]=x&emails[-1]=y&emails[ 2]=z"},
    ]
    for body in bodies:
        for path in ("/smtp/emails", "/smtp/emails/info"):
            answer = post(server, tenant, path, **body)
            assert 400 <= answer.status_code < 500, (path, body, answer.text)
    assert not server.recorder.server_errors


# -- the builders are PHP's own ----------------------------------------------------------------
needs_php = pytest.mark.skipif(php.PHP is None, reason="no php binary (apt-get install php-cli)")


@needs_php
def test_http_build_query_replica_writes_what_php_writes() -> None:
    email = php_email(Tenant(0, "", "", "", "sender@example.com"))
    code = (
        "$e = " + php_literal(email) + ";"
        "echo json_encode([http_build_query(['email' => $e]), serialize($e),"
        " json_encode(['emails' => array_filter(['a', '', 'c'])])]);"
    )
    query, serialized, encoded = json.loads(php.run_php(code))
    assert query == http_build_query({"email": email})
    assert serialized == serialize(email)
    assert encoded == '{"emails":{"0":"a","2":"c"}}'


def php_literal(value: Any) -> str:
    """A PHP array literal of ``value`` (dicts with their keys, lists 0..n-1)."""
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return "[" + ",".join(f"{php_literal(k)}=>{php_literal(v)}" for k, v in items) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "base64_decode('" + base64.b64encode(str(value).encode()).decode() + "')"
