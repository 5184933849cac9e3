"""FastAPI dependencies every router uses: the station, who is logged in, the leader.

Authentication (accounts.py): the session cookie `session_cookie(station)`,
io7_session_<charger id>, set by POST /api/login (HttpOnly, SameSite=Strict, Secure over
HTTPS; the id in its name because make run serves every charger on 127.0.0.1, where one
name meant one charger's login logged the others out), or `Authorization: Bearer <token>` with
the token that login returns. No session: 401. A viewer on an installer's route: 403.
`record` writes who changed what to this charger's security log (every change in the
API goes through it). The dependencies are coroutines, so they run in io7d's loop
thread like the master they read (FastAPI runs plain functions in a thread pool).
"""

from __future__ import annotations

import re
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from master.service import Master
from master.web.accounts import Role, User
from master.web.station import Station

__all__ = ["SESSION_COOKIE", "User", "get_station", "installer", "leader", "peer",
           "record", "session_cookie", "token_of", "viewer"]

SESSION_COOKIE = "io7_session"
log = structlog.get_logger("io7d.web")
# auto_error=False: our own 401 says what to do; both appear in the OpenAPI document.
_bearer = HTTPBearer(auto_error=False, description="the token POST /api/login returns")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="the session cookie POST /api/login sets: its name is "
                       f"{SESSION_COOKIE}_<charger id> (GET /api/me says the id)")


def get_station(request: Request) -> Station:
    station: Station = request.app.state.station
    return station


def peer(request: Request) -> str:
    """The client's address "host:port" ('' when unknown)."""
    client = request.client
    return "" if client is None else f"{client.host}:{client.port}"


def session_cookie(station: Station) -> str:
    """This charger's session cookie name (module doc): a cookie name's characters only."""
    return f"{SESSION_COOKIE}_{re.sub(r'[^A-Za-z0-9_-]', '_', station.charger_id)}"


def token_of(request: Request) -> str | None:
    """The session token a request carries (bearer first, then the cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(session_cookie(get_station(request)))


async def viewer(request: Request, station: Annotated[Station, Depends(get_station)],
           _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
           _c: Annotated[str | None, Depends(_cookie)] = None) -> User:
    """Any logged-in user; 401 otherwise."""
    token = token_of(request)
    user = None if token is None else station.accounts.session(token, station.clock())
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "not logged in: POST /api/login {\"user\", \"password\"}",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


async def installer(user: Annotated[User, Depends(viewer)]) -> User:
    """A logged-in installer; 403 for a viewer."""
    if user.role != Role.INSTALLER:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{user.name} may only read: log in as installer to change this")
    return user


async def leader(station: Annotated[Station, Depends(get_station)]) -> Master:
    """The running group master; 409 with the leader and its UI's URL on a member that
    does not lead (the page links there)."""
    master = station.master()
    if master is None:
        leader_id = station.leader_id()
        where = "no member leads now (election): retry in a few seconds" if leader_id is None \
            else f"the group pages are on {leader_id}"
        raise HTTPException(status.HTTP_409_CONFLICT,
                            {"problem": f"{station.charger_id} does not lead the group: "
                             f"{where}", "leader": leader_id,
                             "url": station.leader_web_url()})
    return master


def record(request: Request, user: User, kind: str, detail: str) -> None:
    """One security-log entry: `user` did `detail` (a failed write is logged, never
    raised: hw.securitylog / master.audit rule 3)."""
    station = get_station(request)
    try:
        station.security.record(kind, who=f"web:{user.name}", peer=peer(request),
                                 detail=detail)
    except OSError as exc:
        log.error("cannot write the security log: check the state folder's disk and "
                  "permissions", kind=kind, detail=detail, error=str(exc))
