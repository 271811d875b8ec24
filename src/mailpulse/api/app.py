"""The HTTP application: routes, error rendering, and the path quirks of real clients."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from mailpulse import __version__
from mailpulse.api import compat, emails, errors, health, oauth, openapi, templates
from mailpulse.api.json import JSONResponse
from mailpulse.runtime import FATAL_EXIT_STATUS, Fatal, Readiness, Runtime, running_worker, watched


class NormalisePath:
    """Collapse repeated and trailing slashes before routing (CS, JAVA, RB and GO send them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = compat.normalise_path(scope["path"])
            if path != scope["path"]:
                scope = dict(scope)
                scope["path"] = path
                scope["raw_path"] = path.encode("utf-8")
        await self.app(scope, receive, send)


def create_app(runtime: Runtime, *, deliver: bool = False, exit_on_fatal: bool = False) -> FastAPI:
    """The API. With ``deliver`` the same process also runs a delivery worker (``serve``).

    ``exit_on_fatal`` (the ``serve`` and ``api`` commands): when the watchdog stopped the
    process, it ends with the watchdog's exit status once shut down (uvicorn would exit 0 in
    a child process, or re-raise the SIGTERM the watchdog used)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.db.start()
        # Everything alive at start-up lives as long as the process: keep it out of the
        # cyclic GC's full collections, which otherwise pause requests for tens of ms.
        gc.freeze()
        async with contextlib.AsyncExitStack() as stack:
            if deliver:
                await stack.enter_async_context(running_worker(runtime))
            await stack.enter_async_context(watched(runtime))
            try:
                yield
            finally:
                await stack.aclose()
                await runtime.db.close()
                if exit_on_fatal and Fatal.reason is not None:
                    os._exit(FATAL_EXIT_STATUS)

    app = FastAPI(
        title="mailpulse",
        version=__version__,
        description="The SendPulse SMTP-service REST API, self-hosted.",
        default_response_class=JSONResponse,
        lifespan=lifespan,
        # The SendPulse routes are plain Starlette routes FastAPI cannot describe: the
        # hand-checked document and its docs page come from api/openapi/.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.readiness = Readiness(runtime)
    errors.install(app)
    app.router.routes.extend(
        [*oauth.ROUTES, *emails.ROUTES, *templates.ROUTES, *openapi.ROUTES, *health.ROUTES]
    )
    app.add_middleware(NormalisePath)
    return app
