"""The OpenAPI fragment of the send endpoint of ``api/emails.py``: ``POST /smtp/emails``.

Kept beside the route it describes. The request schema says what the server accepts, which is
more than SendPulse's own document shows: the real clients send ``email`` as an object, as a
JSON string or as a PHP ``serialize()`` string, recipients as lists, plain strings or PHP
int-keyed maps, and null / ``""`` / ``[]`` / ``{}`` for "not set" (compat §h). Anything looser
here would let schemathesis call an accepted request "invalid"; anything stricter would hide
what the clients really send.
"""

from __future__ import annotations

from typing import Any

from mailpulse.api.openapi.components import (
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
from mailpulse.core import errors

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
                "description": "A stored template (`POST /template`) and its variables: the "
                "template, filled with the variables (HTML-escaped), is the HTML part and "
                "replaces an `html` given beside it; the subject and a `text` given beside it "
                "are filled too (not escaped). A placeholder without a value renders empty. "
                "An id of no template of the account: 31; a template that renders empty: 32; "
                "one that cannot be rendered: 422.",
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
    "(Node SDK, PHP 1, Java); in a form also as bracketed fields, "
    "`email[subject]=…&email[to][0][email]=…` (PHP's `http_build_query`, Guzzle)."
)

# Each refusal of a send: the catalogue's kinds, and the three that core/validate.py spells
# in place. Taken from the code so that a changed message changes the document too.
_SEND_CHECKS: list[tuple[int, str]] = [
    (kind.error_code, kind.message)
    for kind in (
        errors.EMAIL_MISSING,
        errors.BADLY_FORMED,
        errors.NO_SMTP_USER,
        errors.FROM_EMAIL_MISSING,
        errors.FROM_EMAIL_INVALID,
        errors.FROM_INVALID,
        errors.TO_INVALID,
        errors.RECIPIENT_INVALID,
        errors.SUBJECT_MISSING,
        errors.BODY_MISSING,
        errors.TEMPLATE_INVALID,
        errors.TEMPLATE_ID_MISSING,
        errors.TEMPLATE_NOT_FOUND,
        errors.TEMPLATE_EMPTY,
        errors.ATTACHMENTS_INVALID,
        errors.ATTACHMENTS_BINARY_INVALID,
        errors.TOO_MANY_RECIPIENTS,
        errors.MESSAGE_TOO_LARGE,
        errors.SENDER_NOT_VALID,
    )
] + [
    (422, "Argument reply_to is invalid"),
    (422, "Argument html is invalid"),
    (731, "Variables list passed in wrong format"),
    (422, "Template could not be rendered: <why>"),
]
_SEND_REFUSALS = "Refused; `error_code` and `message` are SendPulse's:\n\n" + "\n".join(
    f"- {code} `{message}`" for code, message in _SEND_CHECKS
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
                    "422": error(_SEND_REFUSALS),
                },
                "401",
                "413",
                "503",
            ),
        },
    }
}

SCHEMAS: dict[str, Schema] = {
    "Email": EMAIL,
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
