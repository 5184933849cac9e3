"""io7d's web server (master/web/server.py) for real: uvicorn on a loopback port in this
loop, serving a lone charger's real Station (its real Agent, not stepping). What the
review found: X-Forwarded-* trusted from 127.0.0.1 (finding 4), a failed server task
re-raised in io7d's shutdown (finding 8), a failed start as a traceback (finding 8),
no security headers (finding 10)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from structlog.testing import capture_logs

from master.errors import ConfigError
from master.web.accounts import INITIAL_PASSWORD_FILE, MAX_FAILURES
from master.web.server import WebServer, serve_started, start_web
from master.web.station import Station
from tests.e2e.harness import charger_dir
from tests.web import support
from tests.web.support import io7_toml


@contextlib.asynccontextmanager
async def station_of(tmp: Path, *, tls: str = "plaintext = true",
                     web: str = "plaintext = true") -> AsyncIterator[Station]:
    """A lone charger's Station; `tls` the [tls] lines, `web` [web]'s after its listen."""
    with support.station_of(tmp, io7_toml(state=tmp / "state", tls=tls,
                                          more=f'[web]\nlisten = "127.0.0.1:0"\n{web}\n')) as s:
        yield s


@contextlib.asynccontextmanager
async def served(tmp: Path) -> AsyncIterator[tuple[Station, WebServer, httpx.AsyncClient]]:
    async with station_of(tmp) as station:
        server = await start_web(station)
        assert server is not None
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                yield station, server, client
        finally:
            await server.stop()


def test_forwarded_headers_are_not_trusted(tmp_path: Path) -> None:
    """Review finding 4 (from /tmp/r1/xff.py): uvicorn's proxy_headers default trusted
    X-Forwarded-For from 127.0.0.1, so each failed login could name another peer (no
    throttle, forged peers in the security log) and X-Forwarded-Proto set Secure."""
    async def main() -> None:
        async with served(tmp_path) as (station, _, client):
            password = (tmp_path / "state" / INITIAL_PASSWORD_FILE).read_text().strip()
            r = await client.post("/api/login", json={"user": "installer", "password": password},
                                  headers={"X-Forwarded-Proto": "https",
                                           "X-Forwarded-For": "203.0.113.200"})
            assert r.status_code == 200 and "secure" not in r.headers["set-cookie"].lower()
            codes = []
            for i in range(MAX_FAILURES + 3):
                r = await client.post("/api/login", json={"user": "installer", "password": "x"},
                                      headers={"X-Forwarded-For": f"203.0.113.{i}"})
                codes.append(r.status_code)
            assert codes == [401] * MAX_FAILURES + [429] * 3
            peers = {e.peer.rpartition(":")[0] for e in station.security.tail(50) if e.peer}
            assert peers == {"127.0.0.1"}
    asyncio.run(main())


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (_, _, client):
            for path in ("/", "/static/app.js", "/api/me", "/openapi.json", "/nothing"):
                r = await client.get(path)
                csp = r.headers.get("content-security-policy", "")
                assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
                assert r.headers.get("x-content-type-options") == "nosniff", path
                assert r.headers.get("referrer-policy") == "no-referrer", path
    asyncio.run(main())


def test_the_app_is_built_at_the_first_request_or_when_preloaded(tmp_path: Path) -> None:
    """Issue 15 (server.py rule 5): uvicorn serves from start, the FastAPI app is built
    at the first request (which gets its answer), and its lifespan (the history's
    sampler) runs from then until the server stops; `preload` builds it without one."""
    async def main() -> None:
        async with served(tmp_path) as (_, server, client):
            assert server.app is not None and server.app.app is None
            r = await client.get("/openapi.json")
            assert r.status_code == 200 and r.json()["info"]["title"] == "io7 charger"
            built = server.app.app
            assert isinstance(built, FastAPI) and built.state.history is not None
            assert any(t.get_name() == "io7d-web-history" for t in asyncio.all_tasks())
        assert not any(t.get_name() == "io7d-web-history" for t in asyncio.all_tasks())
        (tmp_path / "again").mkdir()
        async with served(tmp_path / "again") as (_, server, _):
            assert server.app is not None
            server.preload()
            for _ in range(500):
                if server.app.app is not None:
                    break
                await asyncio.sleep(0.02)
            assert isinstance(server.app.app, FastAPI)
    asyncio.run(main())


def test_a_web_task_that_died_does_not_break_io7d_s_shutdown(tmp_path: Path) -> None:
    """Review finding 8: stop() caught only TimeoutError, so a failed server task
    re-raised in io7d's finally and MQTT, the candidate, the agent and Raft were never
    stopped. Now its death is logged when it happens and stop() returns."""
    async def main() -> None:
        async def dies() -> None:
            raise RuntimeError("the web server broke")

        server = uvicorn.Server(uvicorn.Config(FastAPI()))
        with capture_logs() as logs:
            task = asyncio.create_task(dies())
            web = WebServer(server, task, "http://127.0.0.1:1")
            await asyncio.sleep(0)
            await web.stop()
        assert any(e["log_level"] == "error" and "the web server broke" in e.get("error", "")
                   for e in logs), logs
    asyncio.run(main())


def test_a_start_that_fails_is_one_config_error(tmp_path: Path) -> None:
    """Review finding 8: a certificate uvicorn cannot load ended io7d with a traceback."""
    tls = tmp_path / "tls"
    shutil.copytree(charger_dir("io7-01"), tls)

    async def main() -> None:
        async with station_of(tmp_path, tls=f'dir = "{tls}"', web="") as station:
            (tls / "key.pem").write_text("not a key\n")
            with pytest.raises(ConfigError, match="web server did not start") as err:
                await start_web(station)
            assert "\n" not in str(err.value) and "tls" in str(err.value)
    asyncio.run(main())


def test_a_lifespan_that_fails_is_one_config_error_not_a_system_exit() -> None:
    """uvicorn answers a failed lifespan startup with sys.exit(3) inside its task, which
    asyncio re-raises out of the whole loop (io7d would die without stopping anything)."""
    @contextlib.asynccontextmanager
    async def broken(_: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("the history could not start")
        yield

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(FastAPI(lifespan=broken), log_config=None))
        sock = socket.create_server(("127.0.0.1", 0))
        with pytest.raises(ConfigError, match="did not start: exit 3"):
            await serve_started(server, sock, lambda why: ConfigError(
                file=Path("io7.toml"), key="web", problem=f"did not start: {why}"))
    asyncio.run(main())


@pytest.mark.parametrize("ending", ["logout", "password"])
def test_a_live_stream_ends_with_its_session(tmp_path: Path, ending: str) -> None:
    """Review finding 7: an open /api/events stream outlived logout, a password change
    and the session's expiry. It checks the session at every heartbeat now."""
    async def main() -> None:
        async with served(tmp_path) as (station, _, client):
            password = (tmp_path / "state" / INITIAL_PASSWORD_FILE).read_text().strip()
            r = await client.post("/api/login", json={"user": "installer",
                                                      "password": password})
            auth = {"Authorization": f"Bearer {r.json()['token']}"}
            client.cookies.clear()
            async with client.stream("GET", "/api/events", headers=auth) as stream:
                lines = stream.aiter_lines()
                while not (await anext(lines)).startswith("data: "):
                    pass
                if ending == "logout":
                    assert (await client.post("/api/logout", headers=auth)).status_code == 200
                else:
                    station.accounts.set_password("installer", "a new password 1")

                async def drain() -> None:
                    async for _ in lines:
                        pass
                await asyncio.wait_for(drain(), 10.0)  # ends: not a timeout
    asyncio.run(main())
