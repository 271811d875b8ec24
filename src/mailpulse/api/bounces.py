"""The bounce list: ``GET /smtp/bounces/day`` and ``GET /smtp/bounces/day/total`` (compat §a.6,
§a.7).

A day is the 24 hours before now, or, with ``date=YYYY-MM-DD``, that calendar day (UTC). The
list is what ``store/bounces.py`` holds: every bounce the delivery recorder (5xx replies,
permanent routing failures, expiries) and the bounce receiver (reports) listed, newest first.
Whether a bounce put its address on the suppression list is the classifier's call
(delivery/classify.py), not this list's: a blocked message is listed too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from mailpulse.api.deps import authenticated, params, runtime, small_body
from mailpulse.api.emails import parse_date
from mailpulse.api.json import JSONResponse
from mailpulse.core.clock import format_date
from mailpulse.core.errors import ApiError
from mailpulse.store import bounces

_DAY = timedelta(days=1)
_INSTANT = timedelta(microseconds=1)  # the store's finest time: "until" is exclusive
_MAX_INT = 2**63 - 1  # a database binds at most a signed 64-bit integer


def window(value: Any, now: datetime) -> tuple[datetime, datetime]:
    """[since, until): the day named by ``date``, or the 24 hours before ``now`` (``now``
    included: a bounce recorded this instant is listed).

    ``date`` is read like the email log's dates (a datetime names its day); anything else is
    400 / 799 "Wrong date format"."""
    day = parse_date(value, end=False)
    if day is None:
        return now - _DAY, now + _INSTANT
    since = datetime(day.year, day.month, day.day)
    try:
        return since, since + _DAY
    except OverflowError:  # 9999-12-31 has no next day
        return since, datetime.max


def _number(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ApiError(422, 422, f"Argument {name} is invalid") from None
    if not 0 <= number <= _MAX_INT:
        raise ApiError(422, 422, f"Argument {name} is invalid")
    return number


def entry(row: dict[str, Any]) -> dict[str, Any]:
    """One bounce in compat §a.6's shape (the Go SDK's ``BouncesList``): ints as ints."""
    code = row["smtp_answer_code"]
    return {
        "email_to": row["email_to"],
        "sender": row["sender"],
        "send_date": format_date(row["send_date"] or row["created_at"]),
        "subject": row["subject"],
        "smtp_answer_code": int(code) if code is not None else 0,
        "smtp_answer_subcode": row["smtp_answer_subcode"] or "",
        "smtp_answer_data": row["smtp_answer_data"] or "",
    }


async def day(request: Request, account: int) -> Response:
    query = await params(request)
    rt = runtime(request)
    since, until = window(query.get("date"), rt.clock.now())
    settings = rt.settings
    limit = _number(query.get("limit"), "limit") or settings.list_default_limit
    limit = min(limit, settings.list_max_limit)
    offset = _number(query.get("offset"), "offset") or 0

    def job(conn: Connection) -> tuple[list[dict[str, Any]], int]:
        rows = bounces.list_between(conn, account, since, until, limit, offset)
        return rows, bounces.count_between(conn, account, since, until)

    rows, total = await rt.db.read(job)
    return JSONResponse(
        {
            "total": total,
            "emails": [entry(row) for row in rows],
            "request_limit": limit,
            "found": len(rows),
        }
    )


async def day_total(request: Request, account: int) -> Response:
    query = await params(request)
    rt = runtime(request)
    since, until = window(query.get("date"), rt.clock.now())
    total = await rt.db.read(lambda conn: bounces.count_between(conn, account, since, until))
    return JSONResponse({"total": total})


ROUTES = [
    authenticated("/smtp/bounces/day", day, method="GET", body=small_body),
    authenticated("/smtp/bounces/day/total", day_total, method="GET", body=small_body),
]
