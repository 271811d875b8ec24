"""Stored templates: GET /templates, GET /template/{id}, POST /template, POST
/template/edit/{id}, DELETE /template/{id} (ours: SendPulse has no delete), and the preview link
GET /template/preview/{token}.

A template's ``id`` is its ``real_id`` as a string: the account's own templates in SendPulse
have numeric ids too, and a send's ``template.id`` may be either (compat §d, §h.10). The object
carries every field of compat §d in the types the Go SDK and aiosendpulse decode: both
``is_structure`` (SendPulse's key) and ``is_structured`` (aiosendpulse's), ``category_info``
always an object, ``preview`` a real URL, dates ``YYYY-MM-DD HH:MM:SS`` (UTC).

The preview link needs no credential, since a browser opening it has none: it carries a token
signed for this template and account (core/signing.py, purpose ``template-preview``), so it
cannot be guessed or turned into another template's link. It serves the stored HTML as it is
(placeholders unfilled) under a Content-Security-Policy ``sandbox`` that runs no script and
gives the page no access to this origin.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mailpulse.api.compat import lenient_b64decode
from mailpulse.api.deps import (
    authenticated,
    params,
    public,
    runtime,
    small_body,
    template_body,
)
from mailpulse.api.json import JSONResponse
from mailpulse.core import errors, templates
from mailpulse.core.clock import format_date
from mailpulse.core.errors import ApiError, ErrorKind
from mailpulse.core.signing import Signer
from mailpulse.runtime import Runtime
from mailpulse.store import templates as store
from mailpulse.store.gateway import SqlSubmitStore
from mailpulse.store.text import storable

PREVIEW_PURPOSE = "template-preview"
LIST_MAX = 100
NAME_MAX = 200

TEMPLATE_NOT_FOUND = ErrorKind(404, 290, "Template not found")
EDIT_NOT_FOUND = ErrorKind(404, 31, "Template not found")
BODY_MISSING = errors.unprocessable(422, "Argument body missing")
BODY_INVALID = errors.unprocessable(422, "Argument body is invalid string")
BODY_TOO_LARGE = errors.unprocessable(422, "Argument body is too large")
NAME_INVALID = errors.unprocessable(422, "Argument name must be string")
LANG_INVALID = errors.unprocessable(422, "Argument lang must be string")
NAME_TAKEN = errors.unprocessable(573, "Template with such name already exist")

# What SendPulse's own category for an account's templates looks like (aiosendpulse needs an
# object here, the Go SDK an object or null).
CATEGORY_INFO = {
    "id": 0,
    "name": "My templates",
    "meta_description": "",
    "full_description": "",
    "code": "my",
    "sort": 0,
}
_LANG = re.compile(r"^[A-Za-z]{2}\Z")
_SLUG = re.compile(r"[^a-z0-9]+")


# -- the endpoints -----------------------------------------------------------------------------


async def list_templates(request: Request, account: int) -> Response:
    query = await params(request)
    owner = query.get("owner")
    if isinstance(owner, str) and owner.strip().lower() == "sendpulse":
        return JSONResponse([])  # no system templates here
    limit = _count(query.get("limit"), "limit") or LIST_MAX
    offset = _count(query.get("offset"), "offset") or 0
    lang = _lang(query.get("lang"))
    rows = await runtime(request).db.read(
        lambda conn: store.list_templates(
            conn, account, lang=lang, limit=min(limit, LIST_MAX), offset=offset
        )
    )
    return JSONResponse([_shape(request, account, row) for row in rows])


async def get_template(request: Request, account: int) -> Response:
    await params(request)
    found = await _find(request, account, TEMPLATE_NOT_FOUND)
    return JSONResponse(_shape(request, account, found))


async def create_template(request: Request, account: int) -> Response:
    body = await params(request)
    rt = runtime(request)
    name = _name(body.get("name"))
    lang = _lang(body.get("lang")) or "en"
    html = _body(body.get("body"), rt.settings.max_template_bytes)
    now = rt.clock.now()
    real_id = await rt.db.write(
        lambda conn: store.create(conn, account, name=name, lang=lang, body=html, now=now)
    )
    if real_id is None:
        raise NAME_TAKEN()
    _forget(rt, account, real_id)  # a send that named it before it existed cached "none"
    return JSONResponse({"result": True, "real_id": real_id})


async def edit_template(request: Request, account: int) -> Response:
    body = await params(request)
    rt = runtime(request)
    real_id = store.parse_id(request.path_params["template_id"])
    lang = _lang(body.get("lang"))
    html = _body(body.get("body"), rt.settings.max_template_bytes)
    if real_id is None:
        raise EDIT_NOT_FOUND()
    now = rt.clock.now()
    changed = await rt.db.write(
        lambda conn: store.edit(conn, account, real_id, body=html, lang=lang, now=now)
    )
    if not changed:
        raise EDIT_NOT_FOUND()
    _forget(rt, account, real_id)
    return JSONResponse({"result": True})


async def delete_template(request: Request, account: int) -> Response:
    await params(request)
    rt = runtime(request)
    real_id = store.parse_id(request.path_params["template_id"])
    if real_id is None:
        raise EDIT_NOT_FOUND()
    if not await rt.db.write(lambda conn: store.delete(conn, account, real_id)):
        raise EDIT_NOT_FOUND()
    _forget(rt, account, real_id)
    return JSONResponse({"result": True})


_PREVIEW_HEADERS = {
    # No script, no plugin, a unique origin; images, styles and fonts may load (a template's
    # own images are usually remote).
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src * data:; style-src * 'unsafe-inline'; "
        "font-src * data:"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


async def preview(request: Request) -> Response:
    await params(request)
    rt = runtime(request)
    fields = _signer(request).verify(PREVIEW_PURPOSE, str(request.path_params["token"]))
    if fields is None or len(fields) != 2 or not all(f.isdigit() for f in fields):
        raise errors.NOT_FOUND()
    account, real_id = int(fields[0]), int(fields[1])
    found = await rt.db.read(lambda conn: store.get(conn, account, real_id))
    if found is None:
        raise errors.NOT_FOUND()
    return Response(
        found.body or "", media_type="text/html; charset=utf-8", headers=_PREVIEW_HEADERS
    )


ROUTES = [
    authenticated("/templates", list_templates, method="GET", body=small_body),
    public("/template/preview/{token}", preview, method="GET", body=small_body),
    authenticated("/template", create_template, method="POST", body=template_body),
    authenticated("/template/edit/{template_id}", edit_template, method="POST", body=template_body),
    authenticated("/template/{template_id}", get_template, method="GET", body=small_body),
    authenticated("/template/{template_id}", delete_template, method="DELETE", body=small_body),
]


# -- reading the request -----------------------------------------------------------------------


async def _find(request: Request, account: int, missing: ErrorKind) -> store.Template:
    real_id = store.parse_id(request.path_params["template_id"])
    if real_id is None:
        raise missing()
    found = await runtime(request).db.read(lambda conn: store.get(conn, account, real_id))
    if found is None:
        raise missing()
    return found


def _count(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) > store.MAX_ID:
        raise ApiError(422, 422, f"Argument {name} is invalid")
    return int(text)


def _not_set(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _name(value: Any) -> str | None:
    """The name as given (blank: none), at most 200 characters."""
    if _not_set(value):
        return None
    if not isinstance(value, str):
        raise NAME_INVALID()
    if not value.strip():
        return None
    if len(value) > NAME_MAX or not storable(value):
        raise ApiError(422, 422, "Argument name is invalid")
    return value


def _lang(value: Any) -> str | None:
    """A two-letter language code, lower-cased; SendPulse's ``ua`` is stored as ISO's ``uk``
    (aiosendpulse refuses a template whose ``lang`` is not an ISO 639-1 code)."""
    if _not_set(value):
        return None
    if not isinstance(value, str):
        raise LANG_INVALID()
    if not _LANG.match(value):
        raise ApiError(422, 422, "Argument lang is invalid")
    lang = value.lower()
    return "uk" if lang == "ua" else lang


def _body(value: Any, max_bytes: int) -> str:
    """The template's HTML: base64 (decoded leniently, like a send's ``html``), or the markup
    itself when it plainly is markup. Checked to be a template this service can render."""
    if value is None or value == "":
        raise BODY_MISSING()
    if not isinstance(value, str):
        raise BODY_INVALID()
    if len(value) > max_bytes * 4 // 3 + 4 and "<" not in value:
        raise BODY_TOO_LARGE()
    try:
        html = lenient_b64decode(value).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        if "<" not in value:
            raise BODY_INVALID() from None
        html = value
    if len(html.encode("utf-8")) > max_bytes:
        raise BODY_TOO_LARGE()
    if not html.strip():
        raise BODY_MISSING()
    if not storable(html):
        raise errors.NUL_IN_TEXT()
    try:
        templates.check(html)
    except templates.TemplateError as exc:
        raise ApiError(422, 422, f"Argument body is invalid template: {exc}") from None
    return html


# -- shaping -----------------------------------------------------------------------------------


def _shape(request: Request, account: int, row: store.Template) -> dict[str, Any]:
    name = row.name or f"Template {row.id}"
    token = _signer(request).sign(PREVIEW_PURPOSE, str(account), str(row.id))
    shaped: dict[str, Any] = {
        "id": str(row.id),
        "real_id": row.id,
        "lang": row.lang,
        "name": name,
        "name_slug": _SLUG.sub("-", name.lower()).strip("-"),
        "created": format_date(row.created_at),
        "full_description": "",
        "meta_description": "",
        "is_structure": False,
        "is_structured": False,
        "category": "my",
        "category_info": dict(CATEGORY_INFO),
        "tags": {},
        "mark": "",
        "mark_count": 0,
        "owner": "me",
        "preview": f"{_base_url(request)}/template/preview/{token}",
    }
    if row.body is not None:
        shaped["body"] = base64.b64encode(row.body.encode("utf-8")).decode("ascii")
    return shaped


def _base_url(request: Request) -> str:
    configured = runtime(request).settings.public_url.rstrip("/")
    return configured or str(request.base_url).rstrip("/")


def _signer(request: Request) -> Signer:
    """The preview links' signer, made once per app from the service's secret key."""
    signer: Signer | None = getattr(request.app.state, "template_signer", None)
    if signer is None:
        signer = Signer(runtime(request).settings.resolved_secret_key())
        request.app.state.template_signer = signer
    return signer


def _forget(rt: Runtime, account: int, real_id: int) -> None:
    if isinstance(rt.submitter.store, SqlSubmitStore):
        rt.submitter.store.forget_template(account, real_id)
