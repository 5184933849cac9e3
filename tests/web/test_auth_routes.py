"""The login routes (master/web/auth.py) through FastAPI: the session cookie's name per
charger and changing one's own password (review finding 10)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI

from master.web import auth
from master.web.accounts import INITIAL_PASSWORD_FILE
from tests.web.test_login_throttle import _Station


def _app(folder: Path, charger_id: str) -> tuple[FastAPI, _Station]:
    folder.mkdir()
    station = _Station(folder)
    station.charger_id = charger_id
    app = FastAPI()
    app.state.station = station
    app.include_router(auth.router)
    return app, station


def test_two_chargers_on_one_host_keep_their_own_session_cookie(tmp_path: Path) -> None:
    """make run serves every charger on 127.0.0.1 (cookies ignore the port): one cookie
    name meant logging in to io7-02 logged io7-01's page out."""
    apps = {cid: _app(tmp_path / cid, cid) for cid in ("io7-01", "io7-02")}

    async def main() -> None:
        mounts = {f"http://127.0.0.1:{8443 + n}": httpx.ASGITransport(app=app)
                  for n, (app, _) in enumerate(apps.values())}
        async with httpx.AsyncClient(mounts=mounts) as client:
            for n, (_, station) in enumerate(apps.values()):
                password = (station.folder / INITIAL_PASSWORD_FILE).read_text().strip()
                r = await client.post(f"http://127.0.0.1:{8443 + n}/api/login",
                                      json={"user": "installer", "password": password})
                assert r.status_code == 200, r.text
            assert set(client.cookies.keys()) == {"io7_session_io7-01",
                                                  "io7_session_io7-02"}
            for n, cid in enumerate(apps):
                r = await client.get(f"http://127.0.0.1:{8443 + n}/api/me")
                assert r.status_code == 200 and r.json()["charger_id"] == cid
    asyncio.run(main())


def test_ones_own_password_needs_the_current_one(tmp_path: Path) -> None:
    app, station = _app(tmp_path / "io7-01", "io7-01")
    initial = station.folder / INITIAL_PASSWORD_FILE
    first = initial.read_text().strip()

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://io7") as c:
            async def login(user: str, password: str) -> dict[str, str]:
                r = await c.post("/api/login", json={"user": user, "password": password})
                assert r.status_code == 200, r.text
                c.cookies.clear()
                return {"Authorization": f"Bearer {r.json()['token']}"}

            installer = await login("installer", first)
            r = await c.put("/api/password", headers=installer,  # the viewer's: no current
                            json={"user": "viewer", "password": "viewer password 1"})
            assert r.status_code == 200, r.text
            viewer = await login("viewer", "viewer password 1")
            r = await c.put("/api/password", headers=viewer,
                            json={"user": "viewer", "password": "viewer password 2"})
            assert r.status_code == 400 and "current" in r.json()["detail"]
            r = await c.put("/api/password", headers=viewer, json={
                "user": "viewer", "password": "viewer password 2", "current": "wrong one"})
            assert r.status_code == 403 and "current password is wrong" in r.text
            r = await c.put("/api/password", headers=viewer, json={
                "user": "viewer", "password": "viewer password 2",
                "current": "viewer password 1"})
            assert r.status_code == 200, r.text
            assert initial.exists()
            r = await c.put("/api/password", headers=installer, json={
                "user": "installer", "password": "installer password 2", "current": first})
            assert r.status_code == 200, r.text
            assert not initial.exists()  # and io7d no longer announces it
    asyncio.run(main())
