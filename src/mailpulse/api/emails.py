"""The send endpoint and the email log: /smtp/emails, /smtp/emails/total, /info, /{id}."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from mailpulse.api import compat
from mailpulse.api.deps import (
    authenticated,
    client_ip,
    info_body,
    params,
    runtime,
    send_body,
    shape,
    small_body,
)
from mailpulse.api.json import JSONResponse
from mailpulse.core import errors, status
from mailpulse.core.errors import ApiError
from mailpulse.store import emails

# Plain Starlette routes (see ROUTES below): FastAPI's dependency solving and response
# handling cost a tenth of each send, and these endpoints need neither.


async def send(request: Request, account: int) -> Response:
    body = await params(request)
    raw = body.get("email")
    if raw is None or raw == "" or raw == [] or raw == {}:
        raise errors.EMAIL_MISSING()
    email = compat.canonical_email(compat.decode_structured(raw, shape(runtime(request).settings)))
    submitted = await runtime(request).submitter.submit(account, email, client_ip(request))
    return JSONResponse({"result": True, "id": submitted.id})


async def list_emails(request: Request, account: int) -> Response:
    query = await params(request)
    rt = runtime(request)
    flt = log_filter(query, rt.settings.list_default_limit, rt.settings.list_max_limit)
    rows = await rt.db.read(lambda conn: emails.list_log(conn, account, flt))
    return JSONResponse(records(rows))


async def total(request: Request, account: int) -> Response:
    await params(request)
    count = await runtime(request).db.read(lambda conn: emails.count_log(conn, account))
    return JSONResponse({"total": count})


async def info(request: Request, account: int) -> Response:
    body = await params(request)
    rt = runtime(request)
    try:
        ids = compat.decode_structured(body.get("emails"), shape(rt.settings))
    except ApiError:
        raise errors.INFO_IDS_INVALID() from None
    if (
        not isinstance(ids, list)
        or not ids
        or len(ids) > rt.settings.max_info_ids
        or not all(isinstance(i, str | int) and str(i).strip() for i in ids)
    ):
        raise errors.INFO_IDS_INVALID()
    wanted = [str(i).strip() for i in ids]
    rows = await rt.db.read(lambda conn: emails.get_log_records(conn, account, wanted))
    if not rows:
        raise errors.NO_SUCH_EMAILS()
    return JSONResponse(records(rows))


async def get_email(request: Request, account: int) -> Response:
    email_id = str(request.path_params["email_id"])
    await params(request)
    rows = await runtime(request).db.read(
        lambda conn: emails.get_log_records(conn, account, [email_id.strip()])
    )
    if not rows:
        raise errors.NO_SUCH_EMAIL()
    return JSONResponse(records(rows[:1])[0])


# Each route names its body limit; all of them authenticate before reading the body.
class EmailId(Convertor[str]):
    """A log id in a path: any segment but the names of the log's own sub-resources, so that
    ``GET /smtp/emails/info`` is a 405 (info takes POST), not a search for an email "info"."""

    regex = "(?!(?:info|total)$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("email_id", EmailId())

ROUTES = [
    authenticated("/smtp/emails", send, method="POST", body=send_body),
    authenticated("/smtp/emails", list_emails, method="GET", body=small_body),
    authenticated("/smtp/emails/total", total, method="GET", body=small_body),
    authenticated("/smtp/emails/info", info, method="POST", body=info_body),
    authenticated("/smtp/emails/{email_id:email_id}", get_email, method="GET", body=small_body),
]


# -- shaping ------------------------------------------------------------------------------------
def records(rows: Iterable[emails.LogRow]) -> list[dict[str, Any]]:
    """Log records in the types the Go SDK decodes: ints, strings, SendPulse dates.

    ``status`` and ``accepted_date`` are ours: SendPulse has no field for a queued email, so
    ``status`` says queued / deferred / delivered / bounced, and ``send_date`` is the time the
    receiving server accepted it (the acceptance time until then). ``country=off`` is accepted;
    country fields appear only inside tracking entries.

    One comprehension over plain tuples, the times already in SendPulse's form (the store's
    :class:`~mailpulse.store.emails.LogRow`): a listing shapes up to 500 records per request.
    """
    explain = status.EXPLAIN
    return [
        {
            "id": public_id,
            "sender": sender,
            "total_size": total_size,
            "sender_ip": sender_ip,
            "smtp_answer_code": code,
            "smtp_answer_code_explain": explain.get(state) or state.capitalize(),
            "smtp_answer_subcode": subcode or "",
            "smtp_answer_data": data or "",
            "used_ip": used_ip or "",
            "recipient": recipient,
            "subject": subject,
            "send_date": send_date,
            "accepted_date": accepted_date,
            "status": state,
            "tracking": {"click": clicks, "open": opens, "link": [], "client_info": []},
        }
        for (
            public_id,
            sender,
            recipient,
            state,
            accepted_date,
            send_date,
            code,
            subcode,
            data,
            used_ip,
            opens,
            clicks,
            subject,
            total_size,
            sender_ip,
        ) in rows
    ]


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def parse_date(value: Any, *, end: bool) -> datetime | None:
    """A date or a datetime. As an end bound a bare date covers that whole day."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().replace("Z", "").split("+")[0]
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        try:
            if fmt == "%Y-%m-%d" and end:
                return parsed + timedelta(days=1)
            if end:
                return parsed + timedelta(seconds=1)
        except OverflowError:  # the end of 9999-12-31 is past datetime.max
            raise errors.BAD_DATE() from None
        return parsed
    raise errors.BAD_DATE()


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ApiError(422, 422, f"Argument {name} is invalid") from None
    if not 0 <= number <= _MAX_INT:  # a database binds at most a signed 64-bit integer
        raise ApiError(422, 422, f"Argument {name} is invalid")
    return number


_MAX_INT = 2**63 - 1


def log_filter(query: dict[str, Any], default_limit: int, max_limit: int) -> emails.LogFilter:
    limit = _int(query.get("limit"), "limit") or default_limit
    sender = query.get("sender")
    recipient = query.get("recipient")
    return emails.LogFilter(
        limit=min(limit, max_limit),
        offset=_int(query.get("offset"), "offset") or 0,
        since=parse_date(query.get("from", query.get("from_date")), end=False),
        until=parse_date(query.get("to", query.get("to_date")), end=True),
        sender=str(sender).strip() if sender else None,
        recipient=str(recipient).strip() if recipient else None,
    )
