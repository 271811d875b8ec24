"""The OpenAPI fragment of the service's own ``GET /health`` (defined in ``api/app.py``).

Not a SendPulse endpoint; documented so that a load balancer's check is part of the contract.
"""

from __future__ import annotations

from mailpulse.api.openapi.components import Schema, answer

PATHS: dict[str, Schema] = {
    "/health": {
        "get": {
            "operationId": "health",
            "tags": ["Service"],
            "summary": "Liveness: the process answers HTTP",
            "description": "Does not touch the store: it says the process is up, not that "
            "the database is reachable.",
            "security": [],
            "responses": {
                "200": answer(
                    "Up.",
                    {
                        "type": "object",
                        "required": ["status"],
                        "additionalProperties": False,
                        "properties": {"status": {"type": "string", "const": "ok"}},
                    },
                )
            },
        }
    }
}

SCHEMAS: dict[str, Schema] = {}
