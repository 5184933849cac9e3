"""The web server of io7d: uvicorn serving master.web.app inside io7d's own event loop.

1. `start_web` binds the listening socket itself first, so a taken port is one line,
   a ConfigError naming io7.toml `[web] listen` and what to do (io7d exits 2), not a
   traceback from inside uvicorn. Port 0 takes any free port; the URL says which.
2. HTTPS with this charger's certificate ([tls] dir: cert.pem and key.pem, the site's
   chain) unless `[web] plaintext = true`, which is warned in the log and the security
   log at every start. No client certificate is asked: browsers log in with a password.
3. uvicorn runs as a task of io7d's loop (no thread, no process); its own signal
   handlers are kept out (io7d's SIGINT/SIGTERM set io7d's stop event), and `stop`
   ends it within SHUTDOWN_GRACE_S even with live SSE streams open. A server task that
   dies is logged when it dies, and `stop` never raises (io7d's shutdown goes on to MQTT,
   the candidate, the agent and Raft); a start that fails (a certificate uvicorn cannot
   load, uvicorn's sys.exit on a failed lifespan) is one ConfigError line, not a
   traceback nor a SystemExit out of io7d's loop.
4. No proxy is trusted: X-Forwarded-For/-Proto are ignored (uvicorn trusted them from
   127.0.0.1 by default: any local process could forge the peer the login throttle and
   the security log see, and the cookie's Secure flag).
5. The application (master/web/app.py: FastAPI, pydantic, prometheus-client, ~20 MB
   resident, issue 15) is built when first needed: at the first request, which waits for
   it (~0.6 s of imports, run in a thread so io7d's loop and Raft keep going), or when
   io7d calls `preload` (this member leads: the 24 h history's sampler runs with the
   app). Until then uvicorn listens and serves nothing else. Its lifespan (the sampler)
   starts when it is built and stops with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import structlog
import uvicorn

from master.errors import ConfigError
from master.io7dconfig import Io7Config
from master.web.accounts import INITIAL_PASSWORD_FILE
from master.web.station import Station, build_station  # build_station: for callers
from master.webconfig import WebConfig
from protos.tls import TlsFiles

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

SHUTDOWN_GRACE_S = 2.0  # open requests (an SSE stream never ends) get this long
PLAINTEXT_WARNING = ("PLAINTEXT web UI ([web] plaintext = true): passwords and session "
                     "cookies cross the LAN in clear text; for a test bench only")
log = structlog.get_logger("io7d.web")


class _Embedded(uvicorn.Server):
    """uvicorn without its signal handlers (rule 3): io7d owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(config: Io7Config, web: WebConfig) -> socket.socket:
    """Rule 1: the listening socket, or ConfigError."""
    host = web.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, web.port), family=family, backlog=128)
    except OSError as exc:
        raise ConfigError(file=config.file, key="web.listen", problem=f"cannot listen on "
                          f"{web.listen} ({exc.strerror or exc}): another program (or io7d) "
                          "holds that port; stop it or choose another port") from None


class LazyApp:
    """Rule 5: the ASGI application that builds master.web.app's on first need."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.app: ASGIApp | None = None
        self._building: asyncio.Task[ASGIApp] | None = None
        self._lifespan = contextlib.AsyncExitStack()

    def preload(self) -> asyncio.Task[ASGIApp]:
        """Start building the application now, if not built or building; the build."""
        if self._building is None:
            self._building = asyncio.create_task(self._build(), name="web app")
            self._building.add_done_callback(self._failed)
        return self._building

    def _failed(self, task: asyncio.Task[ASGIApp]) -> None:
        if not task.cancelled() and task.exception() is None:
            return
        error = "cancelled" if task.cancelled() else repr(task.exception())
        log.error("web app build failed: tried again at the next request", error=error)
        self._building = None

    async def built(self) -> ASGIApp:
        """The application; builds it the first time (again after a failed build)."""
        if self.app is not None:
            return self.app
        return await asyncio.shield(self.preload())

    async def _build(self) -> ASGIApp:
        module = await asyncio.to_thread(importlib.import_module, "master.web.app")
        app = module.build_app(self.station)
        await self._lifespan.enter_async_context(app.router.lifespan_context(app))
        log.info("web app built", charger_id=self.station.charger_id)
        self.app = app
        return app  # type: ignore[no-any-return]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan_events(receive, send)
            return
        app = await self.built()
        await app(scope, receive, send)

    async def _lifespan_events(self, receive: Receive, send: Send) -> None:
        """uvicorn's start and stop: the application's own lifespan ends with it."""
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._building is not None and not self._building.done():
                    with contextlib.suppress(Exception):
                        await self._building
                await self._lifespan.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Exited(Exception):
    """uvicorn's sys.exit, as an exception a task may hold (rule 3)."""


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # asyncio would re-raise it out of io7d's loop
        raise _Exited(f"exit {exc.code}") from None


async def serve_started(server: uvicorn.Server, sock: socket.socket,
                        fail: Callable[[str], ConfigError]) -> asyncio.Task[None]:
    """The task serving `sock`, once uvicorn has started (TLS files loaded, the lifespan
    run). Raises `fail(why)` if it ends before (rule 3)."""
    task = asyncio.create_task(_serve(server, sock), name="web")
    while not server.started:
        if task.done():
            sock.close()
            exc = None if task.cancelled() else task.exception()
            why = "cancelled" if task.cancelled() else str(exc) or type(exc).__name__
            raise fail(why.replace("\n", " "))
        await asyncio.sleep(0.02)
    return task


def _died(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the web server stopped: the UI and REST API are down until io7d "
                  "restarts", error=str(task.exception()))


class WebServer:
    """The running server: `url`, and `stop()`."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str,
                 app: LazyApp | None = None) -> None:
        self.server = server
        self.task = task
        self.url = url
        self.app = app
        task.add_done_callback(_died)

    def preload(self) -> None:
        """Build the application now (rule 5: this member leads)."""
        if self.app is not None:
            self.app.preload()

    async def stop(self) -> None:
        """Ends the server within SHUTDOWN_GRACE_S + 3 s; never raises (rule 3)."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), SHUTDOWN_GRACE_S + 3.0)
        except TimeoutError:
            self.server.force_exit = True
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        except Exception:  # its death was logged by _died
            pass


async def start_web(station: Station) -> WebServer | None:
    """Serve `station`'s app per its [web] table (None: no [web], nothing served).
    Raises ConfigError (rule 1) before serving anything."""
    config = station.config
    web = config.web
    if web is None:
        return None
    sock = bind(config, web)
    tls = None if web.plaintext or config.master.tls is None else \
        TlsFiles.in_folder(config.master.tls.dir)
    app = LazyApp(station)
    uv_config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on",
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S), server_header=False,
        proxy_headers=False, forwarded_allow_ips="",  # rule 4
        ssl_certfile=None if tls is None else str(tls.cert),
        ssl_keyfile=None if tls is None else str(tls.key))
    server = _Embedded(uv_config)
    port = sock.getsockname()[1]
    own = station.web_urls.get(station.charger_id, f"{web.scheme}://127.0.0.1:{port}")
    url = f"{own.rpartition(':')[0]}:{port}" if web.port == 0 else own
    station.web_urls[station.charger_id] = url
    task = await serve_started(server, sock, lambda why: ConfigError(
        file=config.file, key="web" if tls is None else "tls.dir",
        problem=f"the web server did not start ({why})" + ("" if tls is None else
                f": check {tls.cert} and {tls.key}, or see the log above")))
    log.info("web UI listening", url=url, charger_id=station.charger_id,
             tls="off" if tls is None else str(tls.cert))
    if tls is None:
        log.warning(PLAINTEXT_WARNING)
        with contextlib.suppress(OSError):
            station.security.record("web_plaintext", detail=PLAINTEXT_WARNING)
    return WebServer(server, task, url, app)


def announce(station: Station, server: WebServer) -> None:
    """io7d's stdout: {"web": url}, and {"web_password_file": path} while the installer's
    first password is still there to read (accounts.py rule 1)."""
    print(json.dumps({"web": server.url}), flush=True)
    initial = station.config.agent.state_dir / INITIAL_PASSWORD_FILE
    if initial.exists():
        print(json.dumps({"web_password_file": str(initial)}), flush=True)


__all__ = ["LazyApp", "WebServer", "announce", "build_station", "serve_started", "start_web"]
