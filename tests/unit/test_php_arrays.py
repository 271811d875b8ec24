"""PHP arrays on the wire (api/php_arrays.py, through api/compat.py): integer-keyed objects as
lists, bracketed form fields nested as PHP's ``parse_str`` nests them, within the limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailpulse.api.compat import (
    MAX_DEPTH,
    Shape,
    canonical_email,
    decode_body,
    decode_query,
    decode_structured,
)
from mailpulse.api.php_arrays import as_lists, index_order, nest_fields
from mailpulse.core.errors import ApiError
from tests.support import php
from tests.support.php import http_build_query, serialize

FORM = "application/x-www-form-urlencoded"


def nest(*pairs: tuple[str, str], max_items: int = 10_000, max_depth: int = MAX_DEPTH) -> Any:
    return nest_fields(list(pairs), max_items=max_items, max_depth=max_depth)


def form(text: str, shape: Shape = Shape()) -> Any:
    return decode_body(FORM, text.encode(), shape)


# -- integer-keyed objects are lists -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"0": "a", "2": "c"}, ["a", "c"]),  # array_filter's gap
        ({"2": "c", "0": "a", "1": "b"}, ["a", "b", "c"]),  # any order: by integer key
        ({"10": "k", "9": "j"}, ["j", "k"]),  # integer, not text, order
        ({1: "a", 0: "z"}, ["z", "a"]),  # int keys (a PHP array from serialize)
        ({"0": {"1": "x"}}, [["x"]]),  # nested
        ([{"0": "a"}, "b"], [["a"], "b"]),
    ],
)
def test_an_object_keyed_only_by_integers_is_a_list_in_key_order(value: Any, expected: Any) -> None:
    assert as_lists(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {},  # "not set", as before
        {"0": "a", "x": "b"},  # a map that merely has a numeric key
        {"01": "a"},  # PHP keeps "01", "-1", " 1", "1.0" as string keys too
        {"-1": "a"},
        {" 1": "a"},
        {"1.0": "a"},
        {"١": "a"},  # a non-ASCII digit
        {True: "a"},
    ],
)
def test_other_objects_stay_objects(value: dict[Any, Any]) -> None:
    assert as_lists(value) == value


def test_name_keyed_maps_keep_their_keys_but_their_values_are_converted() -> None:
    email = {
        "attachments": {"1": "first file", "2": "second"},
        "attachments_binary": {"0": "AAE="},
        "template": {"id": "7", "variables": {"1": "x", "items": {"0": "a", "3": "b"}}},
        "to": {"0": {"email": "a@b.example"}},
    }
    assert as_lists(email) == {
        "attachments": {"1": "first file", "2": "second"},
        "attachments_binary": {"0": "AAE="},
        "template": {"id": "7", "variables": {"1": "x", "items": ["a", "b"]}},
        "to": [{"email": "a@b.example"}],
    }


def test_a_key_of_thousands_of_digits_orders_without_converting_it() -> None:
    huge = "1" * 5000  # int(huge) raises ValueError in Python >= 3.11
    assert index_order({huge: "x", "7": "y"}) == ["7", huge]
    assert canonical_email(decode_structured({"to": {huge: "a@b.example"}})) == {
        "to": [{"email": "a@b.example"}]
    }


# -- in every encoding, through compat -----------------------------------------------------------
def test_emails_with_gaps_decode_to_a_list_in_every_encoding() -> None:
    ids = {0: "a", 2: "c"}
    as_json = json.dumps({"emails": ids})
    assert decode_body("application/json", as_json.encode()) == {"emails": ["a", "c"]}
    assert decode_structured(serialize(ids)) == ["a", "c"]
    assert decode_structured(json.dumps(ids)) == ["a", "c"]
    assert form(http_build_query({"emails": ids})) == {"emails": ["a", "c"]}
    assert form(http_build_query({"emails": serialize(ids)})) == {"emails": serialize(ids)}
    assert decode_query(http_build_query({"emails": ids})) == {"emails": ["a", "c"]}
    assert decode_query(json.dumps({"emails": ids})) == {"emails": ["a", "c"]}


def test_a_bracketed_email_form_is_the_json_it_stands_for() -> None:
    email = {
        "subject": "Hi",
        "from": {"name": "Acme", "email": "s@example.com"},
        "to": {0: {"email": "a@example.org"}, 2: {"name": "B", "email": "b@example.org"}},
        "attachments": {"notes.txt": "text"},
        "template": {"id": 12, "variables": {"name": "Rita", "rows": ["x", "y"]}},
        "auto_plain_text": True,
    }
    decoded = form(http_build_query({"email": email}))
    assert decoded == {
        "email": {
            "subject": "Hi",
            "from": {"name": "Acme", "email": "s@example.com"},
            "to": [{"email": "a@example.org"}, {"name": "B", "email": "b@example.org"}],
            "attachments": {"notes.txt": "text"},
            "template": {"id": "12", "variables": {"name": "Rita", "rows": ["x", "y"]}},
            "auto_plain_text": "1",
        }
    }
    assert canonical_email(decode_structured(decoded["email"]))["auto_plain_text"] is True


def test_bracketed_multipart_fields_are_nested_too() -> None:
    boundary = "b0undary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("emails[]", "a"), ("emails[]", "b"), ("email[subject]", "S"))
    )
    body += f"--{boundary}--\r\n"
    decoded = decode_body(f"multipart/form-data; boundary={boundary}", body.encode())
    assert decoded == {"emails": ["a", "b"], "email": {"subject": "S"}}


def test_plain_forms_decode_as_before() -> None:
    assert form("grant_type=client_credentials&client_id=x&client_secret=y") == {
        "grant_type": "client_credentials",
        "client_id": "x",
        "client_secret": "y",
    }
    assert form("email=%7B%22subject%22%3A%22S%22%7D&a=1&a=2") == {
        "email": '{"subject":"S"}',
        "a": "2",  # repeated: the last, as before (and as PHP)
    }


# -- bracketed names, as PHP's parse_str reads them ----------------------------------------------
@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((("a[]", "x"), ("a[]", "y")), {"a": {"0": "x", "1": "y"}}),
        ((("a[]", "x"), ("a[5]", "y"), ("a[]", "z")), {"a": {"0": "x", "5": "y", "6": "z"}}),
        ((("a[b][]", "x"), ("a[b][]", "y")), {"a": {"b": {"0": "x", "1": "y"}}}),
        ((("a[x]", "1"), ("a[x]", "2")), {"a": {"x": "2"}}),  # the last value wins
        ((("a[]", "x"), ("a[0]", "y")), {"a": {"0": "y"}}),
        ((("a[][b]", "x"), ("a[][b]", "y")), {"a": {"0": {"b": "x"}, "1": {"b": "y"}}}),
        ((("a[", "x"), ("a]", "y"), ("a[b]c", "z")), {"a[": "x", "a]": "y", "a[b]c": "z"}),
        ((("[a]", "x"), ("", "y")), {"[a]": "x", "": "y"}),  # no base name: a plain field
        ((("a[b c.d]", "x"),), {"a": {"b c.d": "x"}}),
    ],
)
def test_bracketed_names_nest_like_php_parse_str(
    pairs: tuple[tuple[str, str], ...], expected: dict[str, Any]
) -> None:
    assert nest(*pairs) == expected


@pytest.mark.parametrize(
    "pairs",
    [
        (("a", "1"), ("a[b]", "2")),
        (("a[b]", "1"), ("a", "2")),
        (("a[b]", "1"), ("a[b][c]", "2")),
        (("a[b][c]", "1"), ("a[b]", "2")),
        (("a[]", "1"), ("a[0][x]", "2")),
    ],
)
def test_a_name_that_is_both_a_value_and_an_object_is_badly_formed(
    pairs: tuple[tuple[str, str], ...],
) -> None:
    with pytest.raises(ApiError) as refused:
        nest(*pairs)
    assert (refused.value.status, refused.value.error_code) == (422, 999)
    assert refused.value.message == "Badly formed incoming data"


def test_nesting_is_limited_to_the_json_depth() -> None:
    at_limit = "a" + "[x]" * (MAX_DEPTH - 1)  # with the body itself: MAX_DEPTH levels
    assert nest((at_limit, "1"))
    with pytest.raises(ApiError) as refused:
        nest((at_limit + "[x]", "1"))
    assert refused.value.message == "Badly formed incoming data: nested too deeply"
    with pytest.raises(ApiError):
        form("a" + "%5B%5D" * 1_000_000 + "=1")


def test_bracket_groups_count_with_the_fields_before_anything_is_built() -> None:
    pairs = [("a[][][]", "x")] * 25  # 25 fields, 75 objects
    assert nest(*pairs, max_items=100)
    with pytest.raises(ApiError) as refused:
        nest(*pairs, max_items=99)
    assert (refused.value.status, refused.value.message) == (413, "Too many fields in the request")
    with pytest.raises(ApiError):
        form("&".join(["e[]=1"] * 60), Shape(max_items=100))


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ab[]0 1", max_size=12),
            st.text(max_size=3),
        ),
        max_size=20,
    )
)
def test_any_field_names_decode_or_are_refused_with_an_api_error(
    pairs: list[tuple[str, str]],
) -> None:
    try:
        nested = nest(*pairs, max_items=40, max_depth=4)
    except ApiError as refused:
        assert refused.status in (413, 422)
        return
    as_lists(nested)


# -- against real PHP, when it is installed --------------------------------------------------
PARSE_STR_CASES = [
    "a[]=x&a[5]=y&a[]=z",
    "a[][b]=x&a[][b]=y",
    "email[to][0][email]=a%40b.c&email[to][2][email]=d%40e.f&email[subject]=S",
    "a[x]=1&a[x]=2",
    "a[]=x&a[0]=y",
]


@pytest.mark.skipif(php.PHP is None, reason="no php binary (apt-get install php-cli)")
@pytest.mark.parametrize("query", PARSE_STR_CASES)
def test_nesting_matches_real_php_parse_str(query: str) -> None:
    printed = php.run_php(f"parse_str({json.dumps(query)}, $out); echo json_encode($out);")
    assert form(query) == as_lists(json.loads(printed))
