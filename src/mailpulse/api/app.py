"""The HTTP application: routes, error rendering, and the path quirks of real clients."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from mailpulse.api import bounces as bounce_list
from mailpulse.api import (
    compat,
    emails,
    errors,
    health,
    oauth,
    openapi,
    resubscribe,
    templates,
    unsubscribe,
    unsubscribe_page,
)
from mailpulse.runtime import (
    FATAL_EXIT_STATUS,
    Fatal,
    Readiness,
    Runtime,
    running_receiver,
    running_worker,
    watched,
)


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


def create_app(
    runtime: Runtime,
    *,
    deliver: bool = False,
    exit_on_fatal: bool = False,
    bounces: str = "",
) -> Starlette:
    """The API. With ``deliver`` the same process also runs a delivery worker (``serve``).

    ``bounces``: run the bounce receiver too — "own" (this process alone: an address that
    cannot be had stops the start) or "shared" (one of several processes: the first to bind
    the port runs it); "" not.

    ``exit_on_fatal`` (the ``serve`` and ``api`` commands): when the watchdog stopped the
    process, it ends with the watchdog's exit status once shut down (uvicorn would exit 0 in
    a child process, or re-raise the SIGTERM the watchdog used)."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        runtime.db.start()
        # Everything alive at start-up lives as long as the process: keep it out of the
        # cyclic GC's full collections, which otherwise pause requests for tens of ms.
        gc.freeze()
        async with contextlib.AsyncExitStack() as stack:
            if deliver:
                await stack.enter_async_context(running_worker(runtime))
            if bounces:
                await stack.enter_async_context(
                    running_receiver(runtime, shared=bounces == "shared")
                )
            await stack.enter_async_context(watched(runtime))
            try:
                yield
            finally:
                await stack.aclose()
                await runtime.db.close()
                if exit_on_fatal and Fatal.reason is not None:
                    os._exit(FATAL_EXIT_STATUS)

    # Plain Starlette: every route is a plain Starlette route (the OpenAPI document is
    # hand-checked, api/openapi/), and FastAPI's application adds an OpenTelemetry check and
    # two middlewares to every request (about a twentieth of an accept).
    app = Starlette(lifespan=lifespan)
    app.state.runtime = runtime
    app.state.readiness = Readiness(runtime)
    errors.install(app)
    app.router.routes.extend(
        [
            *oauth.ROUTES,
            *emails.ROUTES,
            *templates.ROUTES,
            *bounce_list.ROUTES,
            *resubscribe.ROUTES,
            *unsubscribe.ROUTES,
            *unsubscribe_page.ROUTES,
            *openapi.ROUTES,
            *health.ROUTES,
        ]
    )
    app.add_middleware(NormalisePath)
    return app
