"""The unsubscribe list: POST, DELETE and GET /smtp/unsubscribe, GET /smtp/unsubscribe/search.

The list is the account's suppression list (store/suppression.py) seen through SendPulse's
fields: an address is *on the unsubscribe list* while it is unsubscribed by link, by the
sender (this API: ``unsubscribe_by_user``) or by a spam complaint. An address that only hard
bounced is suppressed too, but it is on the bounce list (GET /smtp/bounces/day), not here:
SendPulse keeps the two apart. DELETE takes addresses off the suppression list whatever put
them there, a hard bounce included: it is the API's one way to mail such an address again.

``emails`` comes in every shape the clients send (compat §h): a list, a JSON string, a PHP
``serialize()`` string, a PHP array as an int-keyed object (in any order, with gaps), in a JSON,
form or multipart body; DELETE's addresses are strings (objects with an ``email`` are taken
too), POST's are ``{email, comment}`` objects (plain strings are taken too).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mailpulse.api import compat
from mailpulse.api.deps import (
    authenticated,
    params,
    runtime,
    shape,
    small_body,
    unsubscribe_body,
)
from mailpulse.api.emails import _int, parse_date
from mailpulse.api.json import JSONResponse
from mailpulse.core import errors
from mailpulse.core.clock import format_date
from mailpulse.core.errors import ApiError, ErrorKind
from mailpulse.store import suppression
from mailpulse.store.suppression import Suppress

EMPTY_EMAILS = ErrorKind(400, 14, "Empty emails")
WRONG_EMAILS = errors.unprocessable(422, "Wrong emails parameter")
EMPTY_EMAIL = errors.unprocessable(422, "Empty email parameter")
WRONG_EMAIL = errors.unprocessable(422, "Wrong email parameter")

#: longest comment kept (longer ones are cut)
MAX_COMMENT = 1024
# An address as the list keeps it: one "@", something on each side, no spaces, no control
# characters, no angle brackets; at most 320 characters (RFC 5321's 64 + 1 + 255).
_ADDRESS = re.compile(r"[^@\s<>\x00-\x1f\x7f]+@[^@\s<>\x00-\x1f\x7f]+")


def address(value: Any) -> str | None:
    """``value`` as a listable address (stripped), or None if it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > 320 or not _ADDRESS.fullmatch(text):
        return None
    return text


def emails_param(value: Any, request_shape: compat.Shape, most: int) -> list[Any]:
    """The ``emails`` parameter as a non-empty list of items, however it was encoded."""
    if value is None or value == "" or value == [] or value == {}:
        raise EMPTY_EMAILS()
    if isinstance(value, str):
        text = value.strip()
        # JSON text or PHP serialize(); else a form's single plain address (`emails=a@b.c`),
        # a list of one
        structured = text.startswith(("[", "{")) or compat.looks_php_serialized(text)
        single = not structured and address(text) is not None
        value = [text] if single else compat.decode_structured(text)
    if isinstance(value, dict):
        items = compat.int_keyed_values(value)
        value = items if items is not None else [value]  # one {email, comment} object
    if not isinstance(value, list):
        raise WRONG_EMAILS()
    if not value:
        raise EMPTY_EMAILS()
    if len(value) > most:
        raise ApiError(422, 422, f"Too many emails: at most {most} in one request")
    return value


def _comment(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    return str(value).replace("\x00", "")[:MAX_COMMENT]


def unsubscribe_entries(items: list[Any]) -> list[Suppress]:
    """POST's items: ``{email, comment}`` objects (or plain addresses), one entry per address
    (the last comment given for an address wins)."""
    entries: dict[str, Suppress] = {}
    for item in items:
        if isinstance(item, dict):
            email, comment = address(item.get("email")), _comment(item.get("comment"))
        else:
            email, comment = address(item), ""
        if email is None:
            raise WRONG_EMAIL()
        entries[email.lower()] = Suppress(email, unsubscribe_by_user=True, comment=comment)
    return list(entries.values())


def removal_addresses(items: list[Any]) -> list[str]:
    """DELETE's items: plain addresses (or ``{email}`` objects)."""
    found: list[str] = []
    for item in items:
        email = address(item.get("email") if isinstance(item, dict) else item)
        if email is None:
            raise WRONG_EMAIL()
        found.append(email)
    return found


async def add(request: Request, account: int) -> Response:
    body = await params(request)
    rt = runtime(request)
    items = emails_param(body.get("emails"), shape(rt.settings), rt.settings.max_unsubscribe_emails)
    entries = unsubscribe_entries(items)
    now = rt.clock.now()
    await rt.db.write(lambda conn: suppression.add(conn, account, entries, now))
    return JSONResponse({"result": True})


async def remove(request: Request, account: int) -> Response:
    body = await params(request)
    rt = runtime(request)
    items = emails_param(body.get("emails"), shape(rt.settings), rt.settings.max_unsubscribe_emails)
    wanted = removal_addresses(items)
    await rt.db.write(lambda conn: suppression.remove(conn, account, wanted))
    return JSONResponse({"result": True})


def _day(value: Any) -> tuple[datetime | None, datetime | None]:
    """``date`` (YYYY-MM-DD; a datetime counts as its day) as [that day, the next)."""
    start = parse_date(value, end=False)
    if start is None:
        return None, None
    day = start.replace(hour=0, minute=0, second=0)
    try:
        return day, day + timedelta(days=1)
    except OverflowError:  # 9999-12-31
        return day, None


async def list_unsubscribed(request: Request, account: int) -> Response:
    query = await params(request)
    rt = runtime(request)
    limit = min(
        _int(query.get("limit"), "limit") or rt.settings.list_default_limit,
        rt.settings.list_max_limit,
    )
    offset = _int(query.get("offset"), "offset") or 0
    since, until = _day(query.get("date"))
    rows = await rt.db.read(
        lambda conn: suppression.list_unsubscribed(
            conn, account, limit=limit, offset=offset, since=since, until=until
        )
    )
    return JSONResponse(
        [
            {
                "email": row["email"],
                "unsubscribe_by_link": int(row["unsubscribe_by_link"]),
                "unsubscribe_by_user": int(row["unsubscribe_by_user"]),
                "spam_complaint": int(row["spam_complaint"]),
                "date": format_date(row["created_at"]),
            }
            for row in rows
        ]
    )


async def search(request: Request, account: int) -> Response:
    query = await params(request)
    value = query.get("email")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise EMPTY_EMAIL()
    email = address(value)
    if email is None:
        raise WRONG_EMAIL()
    found = await runtime(request).db.read(
        lambda conn: suppression.is_unsubscribed(conn, account, email)
    )
    return JSONResponse({"result": found})


ROUTES = [
    authenticated("/smtp/unsubscribe", add, method="POST", body=unsubscribe_body),
    authenticated("/smtp/unsubscribe", remove, method="DELETE", body=unsubscribe_body),
    authenticated("/smtp/unsubscribe", list_unsubscribed, method="GET", body=small_body),
    authenticated("/smtp/unsubscribe/search", search, method="GET", body=small_body),
]
