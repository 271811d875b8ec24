"""Serving the document (``/openapi.json``) and the interactive docs page (``/docs``).

Why self-hosted assets: an operator's network may not reach the internet, and a docs page that
pulls scripts from a CDN leaks who is reading it and runs code nobody pinned. Swagger UI's
files come from the ``swagger-ui-bundle-v2`` package (Apache-2.0) and are served from this
process; a Content-Security-Policy of ``'self'`` makes the browser refuse anything else.
"""

from __future__ import annotations

import functools
from pathlib import Path

import swagger_ui_bundle
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from mailpulse.api.openapi.document import encoded

DOCS_PATH = "/docs"
SCHEMA_PATH = "/openapi.json"

# Swagger UI inserts inline styles; everything else must come from this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mailpulse API</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/init.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
_INIT = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{SCHEMA_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}});
"""

# The bundle's files this page uses; nothing else under /docs/ is served.
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}


@functools.cache
def _asset_dir() -> Path:
    return Path(str(swagger_ui_bundle.swagger_ui_path))


async def openapi_json(_request: Request) -> Response:
    return Response(encoded(), media_type="application/json")


async def docs_page(_request: Request) -> Response:
    return HTMLResponse(_PAGE, headers=_HEADERS)


async def docs_asset(request: Request) -> Response:
    name = str(request.path_params["name"])
    if name == "init.js":
        return Response(_INIT, media_type="text/javascript; charset=utf-8", headers=_HEADERS)
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404)
    return FileResponse(
        _asset_dir() / name,
        media_type=media_type,
        headers={**_HEADERS, "Cache-Control": "public, max-age=86400"},
    )


ROUTES = [
    Route(SCHEMA_PATH, openapi_json, methods=["GET"]),
    Route(DOCS_PATH, docs_page, methods=["GET"]),
    Route(DOCS_PATH + "/{name}", docs_asset, methods=["GET"]),
]
