"""The OpenAPI fragment of the email log of ``api/emails.py``: list, total, info, one record.

Kept beside the routes it describes (``api/emails.py`` serves both the send and the log; the
send's fragment is ``emails.py``). The response schemas are exact: the types the Go SDK decodes
(ints as ints), every field required, none added (``api.emails.records``).
"""

from __future__ import annotations

from mailpulse.api.openapi.components import (
    BADLY_FORMED_TEXT,
    COUNT,
    DATE_TIME,
    SECURED,
    Schema,
    answer,
    body_in_every_encoding,
    error,
    query_param,
    ref,
    responses_for,
)

# -- the log record ---------------------------------------------------------------------------

RECORD: Schema = {
    "type": "object",
    "description": "One recipient of one sent email.",
    "additionalProperties": False,
    "required": [
        "id",
        "sender",
        "total_size",
        "sender_ip",
        "smtp_answer_code",
        "smtp_answer_code_explain",
        "smtp_answer_subcode",
        "smtp_answer_data",
        "used_ip",
        "recipient",
        "subject",
        "send_date",
        "accepted_date",
        "status",
        "tracking",
    ],
    "properties": {
        "id": {"type": "string"},
        "sender": {"type": "string"},
        "total_size": {"type": "integer", "description": "Bytes of the composed message."},
        "sender_ip": {"type": "string", "description": "The IP the API request came from."},
        "smtp_answer_code": {
            "type": ["integer", "null"],
            "description": "The receiving server's reply code; null until one answered.",
        },
        "smtp_answer_code_explain": {"type": "string"},
        "smtp_answer_subcode": {"type": "string", "description": "e.g. `5.1.1`, or empty."},
        "smtp_answer_data": {"type": "string"},
        "used_ip": {"type": "string", "description": "The local IP the delivery left from."},
        "recipient": {"type": "string"},
        "subject": {"type": "string"},
        "send_date": {
            **DATE_TIME,
            "description": "When the receiving server accepted it (until then: when the API did).",
        },
        "accepted_date": {**DATE_TIME, "description": "Ours: when the API accepted it."},
        "status": {
            "type": "string",
            "enum": ["queued", "deferred", "delivered", "bounced", "suppressed"],
            "description": "Ours: SendPulse has no field for mail in flight.",
        },
        "tracking": {
            "type": "object",
            "additionalProperties": False,
            "required": ["click", "open", "link", "client_info"],
            "properties": {
                "click": {"type": "integer"},
                "open": {"type": "integer"},
                "link": {"type": "array", "items": {"type": "object"}},
                "client_info": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
}

# -- parameters -------------------------------------------------------------------------------

# A whole number ≥ 0 that fits the store's 64-bit integers (larger: 422), or empty for "not
# set" (PHP clients send `from=&to=`).
_DATE_PARAM: Schema = {
    "type": "string",
    "format": "sendpulse-date",
    "description": "`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (or with `T`, or without seconds); "
    "empty means not set. Anything else: 400 / 799 `Wrong date format`.",
}


LIST_PARAMETERS = [
    query_param(
        "limit",
        COUNT,
        "Records per page: default 100 (also for 0), at most 500 (larger is cut to 500).",
    ),
    query_param(
        "offset",
        COUNT,
        "Records to skip, newest first.",
    ),
    query_param("from", _DATE_PARAM, "Sent at or after (inclusive)."),
    query_param("to", _DATE_PARAM, "Sent at or before; a bare date includes that whole day."),
    query_param("from_date", _DATE_PARAM, "Alias of `from` (the Ruby client)."),
    query_param("to_date", _DATE_PARAM, "Alias of `to` (the Ruby client)."),
    query_param("sender", {"type": "string"}, "Only mail from this address (case-insensitive)."),
    query_param("recipient", {"type": "string"}, "Only mail to this address (case-insensitive)."),
    query_param(
        "country",
        {"type": "string"},
        "`off` is accepted (SendPulse's switch for country fields; ours appear only inside "
        "tracking entries).",
    ),
]

_QUIRKS = (
    " Parameters may also come as pysendpulse's URL-quoted JSON object as the whole query "
    "string (`?%7B%22limit%22%3A%2010%7D`) or as a JSON body on the GET (Node SDK); OpenAPI "
    "cannot express either, both are accepted."
)
_INVALID_NUMBER = "422 / 422 `Argument limit is invalid` (or offset): not a whole number ≥ 0. "

_INFO_ID: Schema = {"anyOf": [{"type": "string", "pattern": r"\S"}, {"type": "integer"}]}
_INFO_IDS: Schema = {
    "type": "array",
    "minItems": 1,
    "maxItems": 500,
    "items": _INFO_ID,
}
# A PHP array after array_filter / array_unique: json_encode writes it as an object.
_INFO_IDS_PHP: Schema = {
    "type": "object",
    "description": "A PHP array: the ids keyed by integers, in any order and with gaps.",
    "minProperties": 1,
    "maxProperties": 500,
    "propertyNames": {"pattern": "^(0|[1-9][0-9]*)$"},
    "additionalProperties": _INFO_ID,
}
_INFO_IDS_TEXT = (
    "The list as JSON text or PHP `serialize()`; in a form also as bracketed fields "
    "`emails[0]=…&emails[2]=…` or `emails[]=…` (what PHP's `http_build_query` writes)."
)

_EMAIL_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[^/]+$"},
    "description": "A record id as returned by the send (the Go SDK sends numbers).",
}

PATHS: dict[str, Schema] = {
    "/smtp/emails": {
        "get": {
            "operationId": "listEmails",
            "tags": ["Email log"],
            "summary": "The email log, newest first",
            "description": "One record per recipient." + _QUIRKS,
            "security": SECURED,
            "parameters": LIST_PARAMETERS,
            "responses": responses_for(
                {
                    "200": answer("A page of records.", {"type": "array", "items": ref("Record")}),
                    "400": error("400 / 799 `Wrong date format`."),
                    "422": error(_INVALID_NUMBER + BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        },
    },
    "/smtp/emails/total": {
        "get": {
            "operationId": "countEmails",
            "tags": ["Email log"],
            "summary": "How many records the account's log holds",
            "security": SECURED,
            "responses": responses_for(
                {
                    "200": answer(
                        "The count.",
                        {
                            "type": "object",
                            "required": ["total"],
                            "additionalProperties": False,
                            "properties": {"total": {"type": "integer", "minimum": 0}},
                        },
                    ),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/smtp/emails/info": {
        "post": {
            "operationId": "emailsInfo",
            "tags": ["Email log"],
            "summary": "Records by id",
            "description": (
                "The known records in the order asked; unknown ids (and other tenants') are "
                "left out. SendPulse answers 400 / 14 `No such emails` when none is known, "
                "so a well-formed request can be a 400."
            ),
            "security": SECURED,
            "requestBody": body_in_every_encoding(
                {
                    "type": "object",
                    "required": ["emails"],
                    "properties": {
                        "emails": {
                            "anyOf": [
                                _INFO_IDS,
                                _INFO_IDS_PHP,
                                {
                                    "type": "string",
                                    "description": "The list as JSON text or PHP `serialize()`.",
                                },
                            ]
                        }
                    },
                },
                {
                    "type": "object",
                    "required": ["emails"],
                    "properties": {"emails": {"type": "string", "description": _INFO_IDS_TEXT}},
                },
                "`emails`: up to 500 ids.",
                example={"emails": ["q3k9x1-0b7mza-4f"]},
            ),
            "responses": responses_for(
                {
                    "200": answer("The records.", {"type": "array", "items": ref("Record")}),
                    "400": error(
                        "400 / 832 `Emails param empty or incorrect`; 400 / 14 `No such emails`."
                    ),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/smtp/emails/{id}": {
        "get": {
            "operationId": "getEmail",
            "tags": ["Email log"],
            "summary": "One record",
            "description": (
                "SendPulse answers an unknown id (or another tenant's) with 400 / 14 `No such "
                "email`, not 404. Repeated and trailing slashes in any path are ignored, so "
                "`/smtp/emails/` is the list, and an id containing `/` names no route (404). "
                "`GET /smtp/emails/info` and other methods on `/smtp/emails/info` are 405 (that "
                "path takes POST), never a search for an id `info`."
            ),
            "security": SECURED,
            "parameters": [_EMAIL_ID],
            "responses": responses_for(
                {
                    "200": answer("The record.", ref("Record")),
                    "400": error("400 / 14 `No such email`."),
                    "404": error("404 / 404 `Not found`: the path names no email."),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
}

SCHEMAS: dict[str, Schema] = {"Record": RECORD}
