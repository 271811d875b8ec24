"""Rendering errors in the SendPulse shape: ``{"error_code": int, "message": str}``.

Every refusal leaves here with its HTTP status; unknown routes, wrong methods and even
unexpected exceptions are answered in the same shape, so no client ever sees an HTML page or a
bare 500. A store outage (``StoreUnavailable``, raised at the store's edge) is a 503 with
``Retry-After``, never a 500.

An unexpected exception is a bug, but anyone can trigger one, so it must not flood the log:
it leaves one line at error level naming a request id, the exception's type and (shortened)
message; the traceback is logged at debug level only. The 500 answer carries the same id (in
``X-Request-Id`` and in its message) so that a report can be matched with the line.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from mailpulse.api.json import JSONResponse
from mailpulse.core import errors
from mailpulse.core.errors import ApiError
from mailpulse.core.ids import new_token

log = logging.getLogger("mailpulse.api")


# Refusals after which the rest of the request is not worth reading: close the connection.
_CLOSE_AFTER = frozenset({408, 413, 431})


def error_response(error: ApiError) -> Response:
    headers = None
    if error.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif error.status in _CLOSE_AFTER:
        headers = {"Connection": "close"}
    elif error.status == 503:  # the store is unavailable: say when to try again
        headers = {"Retry-After": str(errors.RETRY_AFTER_SECONDS)}
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if isinstance(exc, errors.StoreUnavailable):
        _store_outage_seen(request, exc)
    return error_response(exc)


def _store_outage_seen(request: Request, exc: errors.StoreUnavailable) -> None:
    """One line per request refused for an outage would flood the log: debug level only (the
    writer, the worker and readiness each say the outage once, at warning level)."""
    log.debug("503 for %s %s: store unavailable: %s", request.method, request.url.path, exc)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6): Starlette's own header
    names only the first route matching the path, and /smtp/emails has two."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(errors.NOT_FOUND())
    if exc.status_code == 405:
        response = error_response(errors.METHOD_NOT_ALLOWED())
        response.headers["Allow"] = _allowed_methods(request)
        return response
    return error_response(ApiError(exc.status_code, exc.status_code, str(exc.detail)))


def log_unexpected(method: str, path: str, exc: BaseException) -> str:
    """One line (and the traceback at debug level); returns the request id it names."""
    request_id = new_token(9)
    message = str(exc)
    if len(message) > 200:
        message = message[:200] + "…"
    log.error(
        "unexpected error request_id=%s %s %r: %s: %r",
        request_id,
        method,
        path[:200],
        type(exc).__name__,
        message,
    )
    log.debug("traceback of request_id=%s", request_id, exc_info=exc)
    return request_id


class CatchUnexpected:
    """Answers an exception no handler knew with a 500 in the SendPulse shape, logged once.

    It sits inside Starlette's ServerErrorMiddleware, which would log the traceback again and
    re-raise to uvicorn, which logs it a third time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if scope["type"] != "http":
                raise
            request_id = log_unexpected(scope.get("method", ""), scope.get("path", ""), exc)
            response = JSONResponse(
                {"error_code": 500, "message": f"Internal error (request id {request_id})"},
                status_code=500,
                headers={"X-Request-Id": request_id},
            )
            try:
                await response(scope, receive, send)
            except Exception:  # the answer had already started: the connection is closed
                return


def install(app: Starlette) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CatchUnexpected)
