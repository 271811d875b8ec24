"""The OpenAPI fragment of the unsubscribe list (``api/unsubscribe.py``) and of the public
one-click pages behind List-Unsubscribe links (``api/unsubscribe_page.py``).

The request schemas are as loose as what the server accepts (compat §h: ``emails`` as a list,
a JSON string, a PHP ``serialize()`` string, or a PHP array as an int-keyed object), so that
schemathesis never calls an accepted request invalid; the answers are exact.
"""

from __future__ import annotations

from typing import Any

from mailpulse.api.openapi.components import (
    BADLY_FORMED_TEXT,
    FORM,
    MULTIPART,
    SECURED,
    Schema,
    answer,
    body_in_every_encoding,
    error,
    ref,
    responses_for,
)
from mailpulse.api.openapi.email_log import LIST_PARAMETERS

_ADDRESS: Schema = {
    "type": "string",
    "description": "An email address: one `@`, no spaces or control characters, at most 320 "
    "characters (compared case-insensitively).",
}
_AS_TEXT: Schema = {
    "type": "string",
    "description": "The list as JSON text or PHP `serialize()` (a form's single plain address "
    "is a list of one).",
}
_PHP_ARRAY_NOTE = (
    "A PHP array may come as an object keyed `0`, `1`, … (in any order, with gaps, as "
    "`array_filter` leaves it)."
)


def _emails(item: Schema, description: str) -> Schema:
    return {
        "description": description + " " + _PHP_ARRAY_NOTE,
        "anyOf": [
            {"type": "array", "minItems": 1, "maxItems": 1000, "items": item},
            _AS_TEXT,
            {"type": "object", "minProperties": 1, "additionalProperties": item},
        ],
    }


_ENTRY: Schema = {
    "anyOf": [
        {
            "type": "object",
            "required": ["email"],
            "properties": {
                "email": _ADDRESS,
                "comment": {"description": "Any text (cut at 1,024 characters)."},
            },
        },
        _ADDRESS,
    ]
}
_REMOVAL: Schema = {
    "anyOf": [
        _ADDRESS,
        {"type": "object", "required": ["email"], "properties": {"email": _ADDRESS}},
    ]
}


def _body(item: Schema, description: str, example: Any) -> Schema:
    return body_in_every_encoding(
        {
            "type": "object",
            "required": ["emails"],
            "properties": {"emails": _emails(item, description)},
        },
        {"type": "object", "required": ["emails"], "properties": {"emails": _AS_TEXT}},
        f"`emails`: up to 1,000 ({description}).",
        example=example,
    )


RESULT: Schema = {
    "type": "object",
    "required": ["result"],
    "additionalProperties": False,
    "properties": {"result": {"type": "boolean"}},
}

_FLAG: Schema = {"type": "integer", "enum": [0, 1]}
UNSUBSCRIBED: Schema = {
    "type": "object",
    "description": "One address on the unsubscribe list.",
    "additionalProperties": False,
    "required": ["email", "unsubscribe_by_link", "unsubscribe_by_user", "spam_complaint", "date"],
    "properties": {
        "email": {"type": "string", "description": "Lower-cased."},
        "unsubscribe_by_link": {
            **_FLAG,
            "description": "The List-Unsubscribe link or mailto, or the one-click page.",
        },
        "unsubscribe_by_user": {**_FLAG, "description": "Put there with POST /smtp/unsubscribe."},
        "spam_complaint": {**_FLAG, "description": "A spam complaint (ARF report)."},
        "date": {
            "type": "string",
            "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
            "description": "When the address was first put on the list, `YYYY-MM-DD HH:MM:SS` UTC.",
        },
    },
}

_EMPTY = "400 / 14 `Empty emails`: `emails` missing or empty."
_WRONG = (
    "422 / 422 `Wrong email parameter` (an item that is not an address), `Wrong emails "
    "parameter` (`emails` is no list), `Too many emails: at most N in one request`; "
)

_PAGE_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[^/]+$"},
    "description": "The signed token of the delivery's List-Unsubscribe link.",
}


def _html(description: str) -> Schema:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


# RFC 8058's body; anything else up to 1 KiB is taken too (and not read for meaning)
_ONE_CLICK: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
}

_PAGE_NOT_FOUND = _html("The token does not verify: a small page saying so (never a redirect).")

PATHS: dict[str, Schema] = {
    "/smtp/unsubscribe": {
        "post": {
            "operationId": "unsubscribeAdd",
            "tags": ["Unsubscribes"],
            "summary": "Unsubscribe addresses",
            "description": (
                "Puts the addresses on the account's unsubscribe list "
                "(`unsubscribe_by_user: 1`), with their comments. Mail to them is then "
                "accepted but not sent: its log record has status `suppressed`."
            ),
            "security": SECURED,
            "requestBody": _body(
                _ENTRY,
                "`{email, comment}` objects; plain addresses are taken too",
                {"emails": [{"email": "ann@example.org", "comment": "asked by phone"}]},
            ),
            "responses": responses_for(
                {
                    "200": answer("Done.", ref("Result")),
                    "400": error(_EMPTY),
                    "422": error(_WRONG + BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        },
        "delete": {
            "operationId": "unsubscribeRemove",
            "tags": ["Unsubscribes"],
            "summary": "Take addresses off the list",
            "description": (
                "The list travels in the DELETE body (every SDK puts it there). Takes the "
                "addresses off the account's suppression list whatever put them there, a hard "
                "bounce or a spam complaint included; unknown addresses are ignored."
            ),
            "security": SECURED,
            "requestBody": _body(
                _REMOVAL,
                "addresses; `{email}` objects are taken too",
                {"emails": ["ann@example.org"]},
            ),
            "responses": responses_for(
                {
                    "200": answer("Done.", ref("Result")),
                    "400": error(_EMPTY),
                    "422": error(_WRONG + BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        },
        "get": {
            "operationId": "unsubscribeList",
            "tags": ["Unsubscribes"],
            "summary": "The unsubscribe list, newest first",
            "description": (
                "Addresses unsubscribed by link, by the sender or by a spam complaint. An "
                "address that only hard bounced is suppressed as well, but it is on the bounce "
                "list (`GET /smtp/bounces/day`), not here."
            ),
            "security": SECURED,
            "parameters": [
                {
                    "name": "date",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "format": "sendpulse-date"},
                    "description": "Only addresses listed on this day (`YYYY-MM-DD`, UTC; a "
                    "datetime counts as its day); empty: not set.",
                },
                *(p for p in LIST_PARAMETERS if p["name"] in ("limit", "offset")),
            ],
            "responses": responses_for(
                {
                    "200": answer(
                        "A page of the list.", {"type": "array", "items": ref("Unsubscribed")}
                    ),
                    "400": error("400 / 799 `Wrong date format`."),
                    "422": error(
                        "422 / 422 `Argument limit is invalid` (or offset). " + BADLY_FORMED_TEXT
                    ),
                },
                "401",
                "413",
                "503",
            ),
        },
    },
    "/smtp/unsubscribe/search": {
        "get": {
            "operationId": "unsubscribeSearch",
            "tags": ["Unsubscribes"],
            "summary": "Is this address on the unsubscribe list?",
            "description": (
                "`true` when the address is on the list that `GET /smtp/unsubscribe` shows "
                "(unsubscribed by link, by the sender or by a spam complaint); `false` "
                "otherwise, also for an address that only hard bounced."
            ),
            "security": SECURED,
            "parameters": [
                {
                    "name": "email",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The address (case-insensitive).",
                }
            ],
            "responses": responses_for(
                {
                    "200": answer("The answer.", ref("Result")),
                    "422": error(
                        "422 / 422 `Empty email parameter`, `Wrong email parameter`. "
                        + BADLY_FORMED_TEXT
                    ),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/unsubscribe/{token}": {
        "get": {
            "operationId": "unsubscribePage",
            "tags": ["Unsubscribes"],
            "summary": "The List-Unsubscribe link's page (public)",
            "description": (
                "A small HTML page with a button that POSTs to the same URL. It unsubscribes "
                "nobody: link scanners that only GET never unsubscribe anyone. No login."
            ),
            "security": [],
            "parameters": [_PAGE_TOKEN],
            "responses": responses_for(
                {"200": _html("The confirmation page."), "404": _PAGE_NOT_FOUND},
                "413",
                "503",
            ),
        },
        "post": {
            "operationId": "unsubscribeOneClick",
            "tags": ["Unsubscribes"],
            "summary": "One-click unsubscribe (RFC 8058; public)",
            "description": (
                "Unsubscribes the address the token names at once (`unsubscribe_by_link: 1`) "
                "and answers a small HTML page. The body (`List-Unsubscribe=One-Click` from a "
                "mail provider, or the page's form) is not needed and not read for meaning; "
                "at most 1 KiB. No login."
            ),
            "security": [],
            "parameters": [_PAGE_TOKEN],
            "requestBody": {
                "required": False,
                "content": {FORM: {"schema": _ONE_CLICK}, MULTIPART: {"schema": _ONE_CLICK}},
            },
            "responses": responses_for(
                {"200": _html("Unsubscribed."), "404": _PAGE_NOT_FOUND},
                "413",
                "503",
            ),
        },
    },
}

SCHEMAS: dict[str, Schema] = {"Result": RESULT, "Unsubscribed": UNSUBSCRIBED}
