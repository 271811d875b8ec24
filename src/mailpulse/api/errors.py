"""Rendering errors in the SendPulse shape: ``{"error_code": int, "message": str}``.

Every refusal leaves here with its HTTP status; unknown routes, wrong methods and even
unexpected exceptions are answered in the same shape, so no client ever sees an HTML page or a
bare 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from mailpulse.api.json import JSONResponse
from mailpulse.core import errors
from mailpulse.core.errors import ApiError

log = logging.getLogger("mailpulse.api")


def error_response(error: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


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


async def _validation_error(_request: Request, _exc: Exception) -> Response:
    return error_response(errors.BADLY_FORMED())


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(ApiError(500, 500, "Internal error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
