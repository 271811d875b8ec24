"""Health checks for load balancers and supervisors: liveness apart from readiness.

``GET /health`` and ``GET /health/live`` say the process's event loop answers: they touch
nothing else, so a supervisor restarts the process only when it is truly stuck, not because
the database is down (a restart would not bring the database back). ``GET /health/ready``
says whether to send this process traffic: 503 while the store is unreachable (a bounded
``SELECT 1`` shared by the requests of one second) or while this process's delivery worker
has stopped or has made no progress for a minute. See runtime.Readiness and README "Health
checks".
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailpulse.api.json import JSONResponse
from mailpulse.core.errors import RETRY_AFTER_SECONDS
from mailpulse.runtime import Readiness

_LIVE = {"status": "ok"}


async def live(_request: Request) -> Response:
    return JSONResponse(_LIVE)


async def ready(request: Request) -> Response:
    readiness: Readiness = request.app.state.readiness
    problem = await readiness.problem()
    if problem is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"error_code": 503, "message": f"Not ready: {problem}"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


ROUTES = [
    Route("/health", live, methods=["GET"]),
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
]
