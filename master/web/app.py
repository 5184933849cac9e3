"""`build_app(station)`: the one FastAPI application io7d serves (master/web/server.py).

Every router is included here, the static UI is mounted at /static with / serving its
index.html, and /openapi.json is served without login (issue 14 §2). The station is
`app.state.station` (master.web.deps.get_station). Every response carries SECURITY_HEADERS
(review): no framing (clickjacking of the installer's pages), scripts only from our own
files (the pages have no inline script), no MIME sniffing, no Referer leaving the LAN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from master.web import api_charger, api_group, api_sitelimit, auth, live, metrics
from master.web.station import Station

STATIC = Path(__file__).parent / "static"
VERSION = "0.1.0"  # = pyproject's version
SECURITY_HEADERS = (
    (b"content-security-policy",
     b"script-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
     b"form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response (streamed ones
    too: it touches only the response's start, never its body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_app(station: Station) -> FastAPI:
    app = FastAPI(title="io7 charger", version=VERSION, docs_url=None, redoc_url=None,
                  description="The io7 charger's and its group's REST API (issue 14): "
                  "log in with POST /api/login, then send the session cookie or "
                  "`Authorization: Bearer <token>`. Roles: viewer reads, installer changes.")
    app.state.station = station
    app.add_middleware(SecurityHeaders)
    for module in (auth, api_group, api_sitelimit, api_charger, live, metrics):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        page = STATIC / "index.html"
        if not page.is_file():
            raise HTTPException(404, "the UI's pages are not installed (master/web/static)")
        return FileResponse(page)

    return app
