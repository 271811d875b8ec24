"""The OpenAPI fragment of the bounce list (``api/bounces.py``): a day's bounces and their count.

The response schemas are exact: compat §a.6's shape as the Go SDK decodes it (``BouncesList``:
``smtp_answer_code`` an int), every field required, none added (``api.bounces.entry``).
"""

from __future__ import annotations

from mailpulse.api.openapi.components import (
    BADLY_FORMED_TEXT,
    COUNT,
    SECURED,
    Schema,
    answer,
    error,
    query_param,
    ref,
    responses_for,
)

BOUNCE: Schema = {
    "type": "object",
    "description": "One bounce: a recipient's permanent failure (a 5xx reply, a domain that "
    "takes no mail, an expiry, or a bounce report).",
    "additionalProperties": False,
    "required": [
        "email_to",
        "sender",
        "send_date",
        "subject",
        "smtp_answer_code",
        "smtp_answer_subcode",
        "smtp_answer_data",
    ],
    "properties": {
        "email_to": {"type": "string", "description": "The recipient, lower-cased."},
        "sender": {"type": "string"},
        "send_date": {
            "type": "string",
            "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$",
            "description": "When it bounced: `YYYY-MM-DD HH:MM:SS`, UTC.",
        },
        "subject": {"type": "string"},
        "smtp_answer_code": {
            "type": "integer",
            "description": "The receiving server's 5xx; 554 for an expiry or a give-up; 0 for "
            "a report that gave none.",
        },
        "smtp_answer_subcode": {"type": "string", "description": "e.g. `5.1.1`, or empty."},
        "smtp_answer_data": {"type": "string", "description": "What the server said, or why."},
    },
}

BOUNCE_LIST: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["total", "emails", "request_limit", "found"],
    "properties": {
        "total": {"type": "integer", "minimum": 0, "description": "Bounces in the day."},
        "emails": {"type": "array", "items": ref("Bounce")},
        "request_limit": {
            "type": "integer",
            "minimum": 1,
            "description": "The page size applied (the `limit` asked, its default, or the cap).",
        },
        "found": {"type": "integer", "minimum": 0, "description": "Bounces in `emails`."},
    },
}


_DATE = query_param(
    "date",
    {"type": "string", "format": "sendpulse-date"},
    "`YYYY-MM-DD`: that day (UTC). Without it (or empty): the 24 hours before now. A datetime "
    "(`YYYY-MM-DD HH:MM:SS`) names its day. Anything else: 400 / 799 `Wrong date format`.",
)
_QUIRKS = (
    " Parameters may also come as pysendpulse's URL-quoted JSON query or as a JSON body on the "
    "GET (Node SDK); OpenAPI cannot express either, both are accepted."
)
_INVALID_NUMBER = "422 / 422 `Argument limit is invalid` (or offset): not a whole number ≥ 0. "

PATHS: dict[str, Schema] = {
    "/smtp/bounces/day": {
        "get": {
            "operationId": "listBounces",
            "tags": ["Bounces"],
            "summary": "A day's bounces, newest first",
            "description": "Every bounce is listed, whether or not it put the address on the "
            "suppression list (only a bad mailbox, a bad domain, or an expiry every answer of "
            "which blamed the address does; a policy block does not)." + _QUIRKS,
            "security": SECURED,
            "parameters": [
                _DATE,
                query_param(
                    "limit",
                    COUNT,
                    "Bounces per page: default 100 (also for 0), at most 500 (larger is cut).",
                ),
                query_param("offset", COUNT, "Bounces to skip, newest first."),
            ],
            "responses": responses_for(
                {
                    "200": answer("A page of the day's bounces.", ref("BounceList")),
                    "400": error("400 / 799 `Wrong date format`."),
                    "422": error(_INVALID_NUMBER + BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
    "/smtp/bounces/day/total": {
        "get": {
            "operationId": "countBounces",
            "tags": ["Bounces"],
            "summary": "How many bounces a day holds",
            "description": "The same day as the list: the 24 hours before now, or `date`.",
            "security": SECURED,
            "parameters": [_DATE],
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
                    "400": error("400 / 799 `Wrong date format`."),
                    "422": error(BADLY_FORMED_TEXT),
                },
                "401",
                "413",
                "503",
            ),
        }
    },
}

SCHEMAS: dict[str, Schema] = {"Bounce": BOUNCE, "BounceList": BOUNCE_LIST}
