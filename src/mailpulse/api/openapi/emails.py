"""The OpenAPI fragment of ``api/emails.py``: the send endpoint and the email log.

Kept beside the routes it describes. The request schemas say what the server accepts, which is
more than SendPulse's own document shows: the real clients send ``email`` as an object, as a
JSON string or as a PHP ``serialize()`` string, recipients as lists, plain strings or PHP
int-keyed maps, and null / ``""`` / ``[]`` / ``{}`` for "not set" (compat §h). The response
schemas are exact: the types the Go SDK decodes (ints as ints), no field left out or added.
"""

from __future__ import annotations

from typing import Any

from mailpulse.api.openapi.components import (
    BADLY_FORMED_TEXT,
    NOT_SET,
    SECURED,
    Schema,
    answer,
    body_in_every_encoding,
    error,
    or_not_set,
    ref,
    responses_for,
)

# -- the `email` object ----------------------------------------------------------------------

_NOT_SET = (
    'null, `""`, `[]` and `{}` mean "not set" for every field (Go sends `"template": null`, '
    "n8n sends empty objects)."
)
_SCALAR: Schema = {"type": ["string", "number", "boolean"]}
_NAME: Schema = {
    "description": "The display name: text (any other JSON value is used as its text)."
}
_ADDRESS_TEXT: Schema = {
    "type": "string",
    "description": "An email address (ASCII local part; checked with email-validator).",
}
_ADDRESS: Schema = {
    "anyOf": [
        _ADDRESS_TEXT,
        {
            "type": "object",
            "required": ["email"],
            "properties": {
                "email": _ADDRESS_TEXT,
                "name": _NAME,
            },
        },
    ]
}
_RECIPIENTS: Schema = {
    "description": (
        "A list of addresses (`{name, email}` objects or plain strings), one address, or a PHP "
        "array (an object keyed 0, 1, …)."
    ),
    "anyOf": [
        {"type": "array", "items": _ADDRESS},
        _ADDRESS,
        {"type": "object", "additionalProperties": _ADDRESS},
        NOT_SET,
    ],
}

EMAIL: Schema = {
    "type": "object",
    "description": (
        "The message. `from`, `to`, `subject` and one of `html`, `text` or `template` are "
        "required; a missing one is refused with the SendPulse code of that check (see 422). "
        + _NOT_SET
    ),
    "properties": {
        "subject": or_not_set(_SCALAR),
        "from": or_not_set(
            {
                "anyOf": [
                    _ADDRESS_TEXT,
                    {
                        "type": "object",
                        "properties": {"email": _ADDRESS_TEXT, "name": _NAME},
                    },
                ],
                "description": "`{name, email}` or a plain address; an active sender of the "
                "account.",
            }
        ),
        "to": _RECIPIENTS,
        "cc": _RECIPIENTS,
        "bcc": _RECIPIENTS,
        "сс": {
            **_RECIPIENTS,
            "description": "`cc` spelled in Cyrillic letters (SendPulse's own example does).",
        },
        "reply_to": or_not_set(_ADDRESS),
        "html": or_not_set(
            {
                "type": "string",
                "description": "Base64 of the UTF-8 HTML (newlines, missing padding and the "
                "URL-safe alphabet are tolerated); a value that is not base64 but contains `<` "
                "is taken as the HTML itself.",
            }
        ),
        "text": or_not_set({**_SCALAR, "description": "The plain-text part."}),
        "auto_plain_text": {
            "description": "Make the text part from the HTML: true, 1, or the text `true`, "
            "`1`, `yes`, `on`; any other value counts as its truth value (0, false, empty: no)."
        },
        "auto_plaint_text": {"description": "The misspelling aiosendpulse sends; same meaning."},
        "template": or_not_set(
            {
                "type": "object",
                "description": "A stored template and its variables (no templates exist yet: "
                "an id is refused with error 31).",
                "properties": {
                    "id": or_not_set({"type": ["string", "integer"]}),
                    "real_id": {
                        "description": "The id under another name (SendPulse's curl examples); "
                        "read only when `id` is absent."
                    },
                    "variables": {
                        "description": "Name → value, an object. Any other value is refused "
                        "with 731 when the template is used; a template without an id next to "
                        "`html` or `text` is ignored whatever it holds (n8n sends one).",
                    },
                },
            }
        ),
        "attachments": or_not_set(
            {
                "type": ["object", "array"],
                "description": "File name → content as text.",
                "additionalProperties": _SCALAR,
                "maxItems": 0,
            }
        ),
        "attachments_binary": or_not_set(
            {
                "type": ["object", "array"],
                "description": "File name → content in base64.",
                "additionalProperties": {"type": "string"},
                "maxItems": 0,
            }
        ),
    },
}

_STRUCTURED_TEXT = (
    "The same object as JSON text (pysendpulse, C#, Ruby) or as a PHP `serialize()` string "
    "(Node SDK, PHP 1, Java)."
)

SEND_EXAMPLE: dict[str, Any] = {
    "email": {
        "subject": "Hello",
        "from": {"name": "Demo", "email": "sender@example.com"},
        "to": [{"name": "Rita", "email": "rita@example.org"}],
        "html": "PGgxPkhlbGxvPC9oMT4=",
        "text": "Hello",
    }
}

# -- the log record ---------------------------------------------------------------------------

_DATE_TIME: Schema = {
    "type": "string",
    "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
    "description": "`YYYY-MM-DD HH:MM:SS`, UTC.",
}

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
            **_DATE_TIME,
            "description": "When the receiving server accepted it (until then: when the API did).",
        },
        "accepted_date": {**_DATE_TIME, "description": "Ours: when the API accepted it."},
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

_INT64 = 2**63 - 1
# A whole number ≥ 0 that fits the store's 64-bit integers (larger: 422), or empty for "not
# set" (PHP clients send `from=&to=`).
_COUNT: Schema = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": _INT64}, {"const": ""}]}
_DATE_PARAM: Schema = {
    "type": "string",
    "format": "sendpulse-date",
    "description": "`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (or with `T`, or without seconds); "
    "empty means not set. Anything else: 400 / 799 `Wrong date format`.",
}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


LIST_PARAMETERS = [
    _query(
        "limit",
        _COUNT,
        "Records per page: default 100 (also for 0), at most 500 (larger is cut to 500).",
    ),
    _query(
        "offset",
        _COUNT,
        "Records to skip, newest first.",
    ),
    _query("from", _DATE_PARAM, "Sent at or after (inclusive)."),
    _query("to", _DATE_PARAM, "Sent at or before; a bare date includes that whole day."),
    _query("from_date", _DATE_PARAM, "Alias of `from` (the Ruby client)."),
    _query("to_date", _DATE_PARAM, "Alias of `to` (the Ruby client)."),
    _query("sender", {"type": "string"}, "Only mail from this address (case-insensitive)."),
    _query("recipient", {"type": "string"}, "Only mail to this address (case-insensitive)."),
    _query(
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

_INFO_IDS: Schema = {
    "type": "array",
    "minItems": 1,
    "maxItems": 500,
    "items": {"anyOf": [{"type": "string", "pattern": r"\S"}, {"type": "integer"}]},
}

_EMAIL_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": r"^[^/]+$"},
    "description": "A record id as returned by the send (the Go SDK sends numbers).",
}

PATHS: dict[str, Schema] = {
    "/smtp/emails": {
        "post": {
            "operationId": "sendEmail",
            "tags": ["Email"],
            "summary": "Send an email",
            "description": (
                "Validates, stores and queues the message; answers only after the message and "
                "one queued delivery per recipient are committed. Every recipient (to, cc, "
                "bcc) gets its own log record; the answer carries the first To recipient's "
                "id. Validation answers come in SendPulse's order and codes: from, to, "
                "subject, body, attachments, recipient count, size, sender."
            ),
            "security": SECURED,
            "requestBody": body_in_every_encoding(
                {
                    "type": "object",
                    "required": ["email"],
                    "properties": {
                        "email": {
                            "anyOf": [
                                ref("Email"),
                                {"type": "string", "description": _STRUCTURED_TEXT},
                            ]
                        }
                    },
                },
                {
                    "type": "object",
                    "required": ["email"],
                    "properties": {"email": {"type": "string", "description": _STRUCTURED_TEXT}},
                },
                "`email`: the message.",
                example=SEND_EXAMPLE,
            ),
            "responses": responses_for(
                {
                    "200": answer("Accepted and committed.", ref("SendResult")),
                    "422": error(
                        "Refused, with SendPulse's code: 422 `Argument email missing`; 999 "
                        "`Badly formed incoming data`; 10 `Argument from.email missing` / "
                        "`… is invalid`; 422 `Argument from is invalid`; 11 `Argument email.to "
                        "is invalid`; 422 `Recipient email is invalid`; 422 `Argument reply_to "
                        "is invalid`; 12 `Argument subject missing`; 13 `Missed email body`; "
                        "422 `Argument html is invalid`; 422 `Argument attachments is invalid` "
                        "/ `attachments_binary`; 422 `Argument template is invalid`; 10 "
                        "`Argument template.id missing`; 731 `Variables list passed in wrong "
                        "format`; 31 `Template not found`; 550 `5.5.3 Too many recipients`; "
                        "422 `Message size limit exceeded`; 400 `No such SMTP user…`; 422 "
                        "`Sender is not valid`."
                    ),
                },
                "401",
                "413",
                "503",
            ),
        },
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
                    "properties": {
                        "emails": {
                            "type": "string",
                            "description": "The list as JSON text or PHP `serialize()`.",
                        }
                    },
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
                "`GET /smtp/emails/info` is this operation with the id `info` (400)."
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

SCHEMAS: dict[str, Schema] = {
    "Email": EMAIL,
    "Record": RECORD,
    "SendResult": {
        "type": "object",
        "required": ["result", "id"],
        "additionalProperties": False,
        "properties": {
            "result": {"type": "boolean", "const": True},
            "id": {"type": "string", "description": "The first To recipient's record id."},
        },
    },
}
