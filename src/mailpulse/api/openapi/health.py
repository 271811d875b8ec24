"""The OpenAPI fragment of the service's own health checks (``api/health.py``).

Not SendPulse endpoints; documented so that load balancers' and supervisors' checks are part of
the contract: liveness (``/health``, ``/health/live``) for restarting a stuck process,
readiness (``/health/ready``) for sending it traffic.
"""

from __future__ import annotations

from typing import Any

from mailpulse.api.openapi.components import RETRY_AFTER, Schema, answer, ref

_LIVE_BODY: Schema = {
    "type": "object",
    "required": ["status"],
    "additionalProperties": False,
    "properties": {"status": {"type": "string", "const": "ok"}},
}
_LIVE_DESCRIPTION = (
    "Liveness: the process's event loop answers. Touches nothing else (not the store): a "
    "supervisor should restart the process when this fails, and only then."
)


def _live(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "tags": ["Service"],
            "summary": summary,
            "description": _LIVE_DESCRIPTION,
            "security": [],
            "responses": {"200": answer("Up.", _LIVE_BODY)},
        }
    }


PATHS: dict[str, Schema] = {
    "/health": _live("health", "Liveness (the original path; same as /health/live)"),
    "/health/live": _live("healthLive", "Liveness: the process answers HTTP"),
    "/health/ready": {
        "get": {
            "operationId": "healthReady",
            "tags": ["Service"],
            "summary": "Readiness: send this process traffic",
            "description": "503 while the store is unreachable (a `SELECT 1` bounded to 2 s, "
            "reused for a second) or while this process's delivery worker has stopped or has "
            "made no progress for 60 s. A load balancer should take the process out of "
            "rotation, not restart it.",
            "security": [],
            "responses": {
                "200": answer(
                    "Ready.",
                    {
                        "type": "object",
                        "required": ["status"],
                        "additionalProperties": False,
                        "properties": {"status": {"type": "string", "const": "ready"}},
                    },
                ),
                "503": answer(
                    "Not ready; the message says why.",
                    ref("Error"),
                    headers={"Retry-After": RETRY_AFTER},
                ),
            },
        }
    },
}

SCHEMAS: dict[str, Schema] = {}
