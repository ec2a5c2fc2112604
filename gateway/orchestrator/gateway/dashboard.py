"""The dashboard at `/`: its built files when present, else a page saying how to build them.

Mounted after every router, so API and WebSocket routes always take precedence. Whether the
build is there is checked per request: a build made while the gateway runs is served at once.
"""

from __future__ import annotations

import html
from pathlib import Path, PurePosixPath

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Orchestrator gateway</title></head>
<body style="font-family: monospace; max-width: 44rem; margin: 4rem auto; line-height: 1.5">
<h1>Dashboard not built</h1>
<p>The gateway is running, but <code>{folder}</code> holds no build.</p>
<p>Build it with <code>make install</code> (or <code>npm ci &amp;&amp; npm run build</code> in
<code>dashboard/</code>, Node.js 20.19+); the gateway serves it as soon as it exists.</p>
<p>The API is up meanwhile: <a href="/docs">/docs</a>, <a href="/openapi.json">/openapi.json</a>,
<a href="/ready">/ready</a>.</p>
</body></html>
"""

# Paths the dashboard never owns: an unknown one there is a JSON 404, not the app shell.
_NOT_DASHBOARD = ("api/", "ws/", "docs", "openapi.json", "redoc")


class DashboardFiles(StaticFiles):
    """Static files with the single-page-app fallback: unknown page paths get `index.html`;
    while there is no build, page paths get the page that says how to make one."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self._index = directory / "index.html"
        self._missing = _MISSING.format(folder=html.escape(str(directory)))

    async def check_config(self) -> None:
        if self._index.is_file():  # no folder yet is no error here: it is the "not built" page
            await super().check_config()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # a mount at `/` also sees sockets no route took
            await send({"type": "websocket.close", "code": 1008, "reason": "no such socket"})
            return
        await super().__call__(scope, receive, send)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path.startswith(_NOT_DASHBOARD):
            raise HTTPException(404)
        if not self._index.is_file():
            if PurePosixPath(path).suffix:
                raise HTTPException(404)
            return HTMLResponse(self._missing)
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or PurePosixPath(path).suffix:
                raise
            return await super().get_response("index.html", scope)


def mount_dashboard(app: FastAPI, folder: Path | None) -> None:
    if folder is not None:
        app.mount("/", DashboardFiles(folder), name="dashboard")
        return
    page = _MISSING.format(folder="dashboard/dist")

    @app.get("/", include_in_schema=False)
    async def dashboard_missing() -> HTMLResponse:
        return HTMLResponse(page)
