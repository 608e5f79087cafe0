"""Everything a browser or a monitoring system reads from a peer, mounted on the app.

* ``/static/...``: packaged assets (node/static: vendored Swagger UI and uPlot, the explorer);
* ``/docs``: Swagger UI from those assets, so it renders without internet (no CDN);
* ``/explorer``: the chain explorer (a static page over the REST API and ``/events``);
* ``/metrics``, ``/events``, ``GET /txs`` search, ``/validators``, ``/net_info``, ``/genesis``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from pocnet.node.events import events_router
from pocnet.node.explorer_api import explorer_router
from pocnet.node.metrics import metrics_router

if TYPE_CHECKING:
    from pocnet.node.node import Node

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWAGGER = "/static/vendor/swagger-ui"


def docs_html(title: str) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - API docs",
                               swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
                               # no call to the public validator service (validator.swagger.io)
                               swagger_ui_parameters={"validatorUrl": None})


def install_web(node: "Node", app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(metrics_router(node.metrics))
    app.include_router(events_router(node, node.events))
    app.include_router(explorer_router(node, node.peer_book))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return docs_html(app.title)

    @app.get("/explorer", include_in_schema=False)
    async def explorer() -> FileResponse:
        return FileResponse(STATIC_DIR / "explorer" / "index.html", media_type="text/html")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/explorer")

