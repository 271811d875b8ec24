"""The real SendPulse clients' wire quirks (compat §a, §b, §h) decode to one canonical shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import phpserialize
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpulse.api.compat import (
    canonical_email,
    decode_body,
    decode_query,
    decode_structured,
    lenient_b64decode,
    normalise_path,
    request_params,
)
from mailpulse.api.php_arrays import index_order
from mailpulse.core.errors import ApiError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

REALISTIC_EMAIL: dict[str, Any] = {
    "subject": "Привет 🚀 from mailpulse",
    "html": base64.b64encode("<h1>Привет 😀</h1>".encode()).decode(),
    "text": "Привет 😀",
    "from": {"name": "Отправитель", "email": "sender@example.com"},
    "to": [{"name": "Анна", "email": "anna@example.com"}, {"email": "bob@example.com"}],
    "auto_plain_text": False,
}

# Produced by running sendpulse-api 1.1.7's own serialize() under Node (compat §a.1).
NODE_SERIALIZED_EMAIL = (
    'a:6:{s:4:"html";s:36:"PGgxPtCf0YDQuNCy0LXRgiDwn5iAPC9oMT4=";'
    's:7:"subject";s:22:"Тема 🚀 "quoted"";'
    's:4:"from";a:2:{s:4:"name";s:22:"Отправитель";s:5:"email";s:18:"sender@example.com";}'
    's:2:"to";a:2:{i:0;a:2:{s:4:"name";s:4:"Ан";s:5:"email";s:13:"a@example.com";}'
    'i:1;a:1:{s:5:"email";s:13:"b@example.com";}}'
    's:8:"template";N;s:15:"auto_plain_text";b:0;}'
)


def assert_badly_formed(call: Callable[..., Any], *args: Any) -> None:
    with pytest.raises(ApiError) as raised:
        call(*args)
    assert (raised.value.status, raised.value.error_code) == (422, 999)


def php_serialize(value: Any) -> str:
    return phpserialize.dumps(value).decode("utf-8")


def multipart(boundary: str, fields: dict[str, str]) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8")


# ------------------------------------------------------------------- email / emails encodings


def test_email_as_json_string_from_python_client_is_parsed() -> None:
    wire = json.dumps(REALISTIC_EMAIL | {"html": None, "text": None, "template": {"id": "73606"}})
    body = json.dumps({"email": wire}).encode()

    email = decode_structured(decode_body(JSON, body)["email"])

    assert email["subject"] == "Привет 🚀 from mailpulse"
    assert email["template"] == {"id": "73606"}
    assert email["html"] is None


def test_email_as_php_serialize_string_from_node_client_is_unserialized() -> None:
    assert decode_structured(php_serialize(REALISTIC_EMAIL)) == REALISTIC_EMAIL


def test_hand_written_php_serialize_literal_turns_php_arrays_into_lists() -> None:
    literal = (
        'a:2:{s:7:"subject";s:1:"S";s:2:"to";a:1:{i:0;a:1:{s:5:"email";s:13:"x@example.com";}}}'
    )

    assert decode_structured(literal) == {"subject": "S", "to": [{"email": "x@example.com"}]}


def test_serialize_output_of_node_sendpulse_api_parses_with_byte_lengths() -> None:
    email = decode_structured(NODE_SERIALIZED_EMAIL)

    assert email["subject"] == 'Тема 🚀 "quoted"'
    assert email["to"][1] == {"email": "b@example.com"}
    assert email["template"] is None
    assert email["auto_plain_text"] is False


def test_php_array_with_gapped_int_keys_is_a_list_in_key_order() -> None:
    # array_filter / array_unique leave gaps; the keys were list positions (issue 7)
    assert decode_structured('a:2:{i:5;s:1:"b";i:1;s:1:"a";}') == ["a", "b"]


def test_emails_as_json_string_from_python_client_is_parsed() -> None:
    wire = '[{"email": "x@example.com", "comment": "c"}]'

    assert decode_structured(wire) == [{"email": "x@example.com", "comment": "c"}]


def test_emails_as_php_serialize_string_from_node_client_is_unserialized() -> None:
    assert decode_structured('a:1:{i:0;s:13:"x@example.com";}') == ["x@example.com"]


def test_real_objects_and_none_pass_through_decode_structured() -> None:
    assert decode_structured({"subject": "S"}) == {"subject": "S"}
    assert decode_structured(["a@example.com"]) == ["a@example.com"]
    assert decode_structured(None) is None


# ------------------------------------------------------------------------------ request bodies


def test_form_body_with_serialized_email_from_php1_and_java_is_decoded() -> None:
    body = urlencode({"email": php_serialize(REALISTIC_EMAIL)}).encode()

    assert decode_structured(decode_body(FORM, body)["email"]) == REALISTIC_EMAIL


def test_form_body_with_json_email_from_csharp_and_ruby_is_decoded() -> None:
    body = urlencode({"email": json.dumps(REALISTIC_EMAIL)}).encode()

    assert decode_structured(decode_body(FORM, body)["email"]) == REALISTIC_EMAIL


def test_token_request_as_form_from_n8n_is_decoded() -> None:
    body = b"grant_type=client_credentials&client_id=id%2B1&client_secret=s+cret"

    assert decode_body(f"{FORM}; charset=utf-8", body) == {
        "grant_type": "client_credentials",
        "client_id": "id+1",
        "client_secret": "s cret",
    }


def test_token_request_as_multipart_from_mcp_client_is_decoded() -> None:
    fields = {"grant_type": "client_credentials", "client_id": "id", "client_secret": "sécret"}
    body = multipart("--------------------------851342613447193456028155", fields)
    content_type = (
        "multipart/form-data; boundary=--------------------------851342613447193456028155"
    )

    assert decode_body(content_type, body) == fields


def test_json_body_without_content_type_is_parsed() -> None:
    assert decode_body(None, b'  {"grant_type": "client_credentials"}') == {
        "grant_type": "client_credentials"
    }


def test_empty_body_is_an_empty_object() -> None:
    assert decode_body(None, b"") == {}
    assert decode_body(JSON, b" \r\n") == {}


def test_empty_array_body_from_php2_contributes_no_params() -> None:
    assert decode_body(JSON, b"[]") == []
    assert request_params(b"limit=5", JSON, b"[]") == {"limit": "5"}


# ---------------------------------------------------------------------------- query strings


def test_json_query_string_from_python_client_keeps_literal_plus() -> None:
    query = b"%7B%22limit%22:%2010,%20%22sender%22:%20%22a+b@x.com%22,%20%22to%22:%20null%7D"

    assert decode_query(query) == {"limit": 10, "sender": "a+b@x.com", "to": None}


def test_empty_json_query_string_from_python_client_is_empty_dict() -> None:
    assert decode_query(b"%7B%7D") == {}


def test_ordinary_php_query_string_keeps_blank_values() -> None:
    query = "limit=0&offset=0&from=&to=&sender=&recipient=&country=off"

    assert decode_query(query) == {
        "limit": "0",
        "offset": "0",
        "from": "",
        "to": "",
        "sender": "",
        "recipient": "",
        "country": "off",
    }


def test_json_body_on_get_from_node_client_is_merged_over_query() -> None:
    body = b'{"limit":10,"offset":20,"from":"","to":"","sender":"","recipient":"b@example.com"}'

    params = request_params(b"limit=1&country=off", None, body)

    assert params == {
        "limit": 10,
        "offset": 20,
        "from": "",
        "to": "",
        "sender": "",
        "recipient": "b@example.com",
        "country": "off",
    }


# --------------------------------------------------------------------------- canonical email


def test_nulls_and_empty_values_mean_not_set() -> None:
    email = canonical_email(
        {
            "subject": "S",
            "html": None,
            "text": "",
            "from": {"name": "", "email": "s@example.com"},
            "template": {"id": "", "variables": {}},
            "attachments": {},
            "attachments_binary": [],
            "cc": [],
        }
    )

    assert email == {"subject": "S", "from": {"email": "s@example.com"}}


def test_go_client_unset_fields_are_dropped_but_false_is_kept() -> None:
    email = canonical_email(
        {"subject": "S", "template": None, "auto_plain_text": False, "attachments": None}
    )

    assert email == {"subject": "S", "auto_plain_text": False}


def test_misspelled_auto_plaint_text_from_aio_is_an_alias() -> None:
    assert canonical_email({"auto_plaint_text": True}) == {"auto_plain_text": True}


def test_real_auto_plain_text_wins_over_the_misspelled_key() -> None:
    email = canonical_email({"auto_plain_text": True, "auto_plaint_text": False})

    assert email == {"auto_plain_text": True}


@pytest.mark.parametrize(
    ("wire", "expected"),
    [(1, True), (0, False), ("1", True), ("0", False), ("true", True), ("False", False)],
)
def test_auto_plain_text_given_as_number_or_word_becomes_bool(wire: Any, expected: bool) -> None:
    assert canonical_email({"auto_plain_text": wire}) == {"auto_plain_text": expected}


def test_cyrillic_cc_key_from_the_seed_is_an_alias_of_cc() -> None:
    email = canonical_email({"сс": ["c2@example.com"], "cc": [{"email": "c1@example.com"}]})

    assert email == {"cc": [{"email": "c1@example.com"}, {"email": "c2@example.com"}]}


def test_reply_to_as_plain_string_from_sdk_becomes_object() -> None:
    email = canonical_email({"reply_to": "r@example.com"})

    assert email == {"reply_to": {"email": "r@example.com"}}


def test_reply_to_as_object_is_kept() -> None:
    reply_to = {"name": "R", "email": "r@example.com"}

    assert canonical_email({"reply_to": reply_to}) == {"reply_to": reply_to}


@pytest.mark.parametrize(
    "wire",
    [
        {"email": "a@example.com"},
        "a@example.com",
        ["a@example.com"],
        {"0": {"email": "a@example.com"}},
        [{"email": "a@example.com"}],
    ],
)
def test_recipient_shapes_become_a_list_of_objects(wire: Any) -> None:
    assert canonical_email({"to": wire}) == {"to": [{"email": "a@example.com"}]}


def test_template_id_given_as_int_becomes_string() -> None:
    email = canonical_email({"template": {"id": 12345, "variables": {"name": "A"}}})

    assert email == {"template": {"id": "12345", "variables": {"name": "A"}}}


def test_template_id_given_as_string_is_kept_stripped() -> None:
    assert canonical_email({"template": {"id": " 73606 "}}) == {"template": {"id": "73606"}}


def test_template_real_id_is_an_alias_and_php_empty_variables_become_object() -> None:
    email = canonical_email({"template": {"real_id": 73606, "variables": []}})

    assert email == {"template": {"id": "73606", "variables": {}}}


def test_canonical_email_does_not_mutate_its_input() -> None:
    raw = {"to": "a@example.com", "template": {"id": 1, "variables": []}, "сс": ["c@example.com"]}
    snapshot = json.loads(json.dumps(raw))

    canonical_email(raw)

    assert raw == snapshot


def test_email_that_is_not_an_object_is_badly_formed() -> None:
    assert_badly_formed(canonical_email, "subject")
    assert_badly_formed(canonical_email, ["a"])


# ----------------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("//smtp/unsubscribe", "/smtp/unsubscribe"),
        ("//smtp//emails", "/smtp/emails"),
        ("/v2/email-service/webhook/", "/v2/email-service/webhook"),
        ("/templates//", "/templates"),
        ("/", "/"),
        ("//", "/"),
    ],
)
def test_double_and_trailing_slashes_are_collapsed(wire: str, expected: str) -> None:
    assert normalise_path(wire) == expected


def test_raw_at_and_plus_in_path_are_left_alone() -> None:
    assert normalise_path("/senders/s+tag@example.com/code") == "/senders/s+tag@example.com/code"


# ---------------------------------------------------------------------------------- base64


def test_base64_with_newline_every_60_chars_from_ruby_decodes() -> None:
    payload = ("<p>Привет, мир! 😀</p>" * 12).encode()
    encoded = base64.b64encode(payload).decode()
    ruby = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))

    assert len(payload) > 200 and "\n" in ruby[:-1]
    assert lenient_b64decode(ruby) == payload


def test_base64_without_padding_decodes() -> None:
    assert lenient_b64decode("aGk") == b"hi"
    assert lenient_b64decode("aGk=") == b"hi"


def test_url_safe_base64_decodes() -> None:
    assert lenient_b64decode(base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode()) == b"\xfb\xff\xfe"


@pytest.mark.parametrize("wire", ["not base64!", "a", "aGk=aGk", "Привет"])
def test_text_that_is_not_base64_raises_value_error(wire: str) -> None:
    with pytest.raises(ValueError):
        lenient_b64decode(wire)


# ------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (JSON, b"{not json"),
        (None, b'{"a": 1'),
        (JSON, b"garbage"),
        (JSON, b"[" * 5_000),  # deeper than MAX_DEPTH (100,000 is too many values: 413)
        (FORM, b"email=\xff\xfe"),
        (FORM, b"email=%ff%fe"),
        ("text/plain", b"hello"),
        (None, b"hello"),
        ("multipart/form-data; boundary=XyZ", b"garbage"),
        ("multipart/form-data", multipart("XyZ", {"a": "b"})),
        ("multipart/form-data; boundary=XyZ", multipart("XyZ", {"a": "b"})[:40]),
    ],
)
def test_garbage_body_is_badly_formed(content_type: str | None, body: bytes) -> None:
    assert_badly_formed(decode_body, content_type, body)


@pytest.mark.parametrize(
    "wire",
    [
        'a:2:{s:7:"subject";',
        's:5:"ab";',
        'a:1:{i:0;s:1:"x";}trailing',
        'O:8:"stdClass":0:{}',
        "hello",
        "{broken json",
        "a:1:{i:0;" * 100_000,
    ],
)
def test_garbage_serialize_string_is_badly_formed(wire: str) -> None:
    assert_badly_formed(decode_structured, wire)


def test_invalid_json_in_query_string_is_badly_formed() -> None:
    assert_badly_formed(decode_query, b"%7B%22limit%22:")


# -------------------------------------------------------------------------------- property

# An empty PHP array is indistinguishable from an empty list (PHP's own json_encode gives []),
# so the round trip holds for non-empty maps. Wire text is UTF-8, so no lone surrogates.
wire_text = st.text(st.characters(exclude_categories=["Cs"]))


@given(st.dictionaries(wire_text, wire_text, min_size=1))
def test_json_and_php_serialize_round_trip_through_decode_structured(data: dict[str, str]) -> None:
    # A map keyed only by integers ("0", "2", …) is a PHP array: it comes back as the list of
    # its values in key order (issue 7).
    order = index_order(data)
    expected = data if order is None else [data[key] for key in order]
    assert decode_structured(json.dumps(data)) == expected
    assert decode_structured(php_serialize(data)) == expected


def test_template_variables_without_an_id_are_kept_for_validation_when_no_body() -> None:
    email = canonical_email({"subject": "S", "template": {"id": "", "variables": {"a": 1}}})
    assert email == {"subject": "S", "template": {"variables": {"a": 1}}}


def test_n8n_template_form_next_to_a_body_is_dropped() -> None:
    email = canonical_email(
        {"subject": "S", "html": "PGI+", "template": {"id": "", "variables": {"a": "1"}}}
    )
    assert email == {"subject": "S", "html": "PGI+"}
