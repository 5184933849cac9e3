"""Login, logout and passwords of the web UI and REST API (accounts.py keeps them).

POST /api/login {"user", "password"} -> {"token", "user", "role"} and the session cookie;
POST /api/logout; GET /api/me; PUT /api/password (installer: any account; a viewer:
its own; one's own needs `current`, checked and throttled as a login is). Refused
logins (wrong password, unknown account, a locked peer) are security
log entries `web_login_refused` with the user tried and the peer; logins, logouts and
password changes are entries too, with who. The handlers are plain functions: FastAPI
runs them in its thread pool, so scrypt's ~50 ms never stalls io7d's control loop;
accounts.py bounds how many hashes run at once and answers 429 to a host's second
parallel attempt (review: 40 parallel logins were 40 hashes, ~760 MB).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from master.web.accounts import LoginRefused, PasswordRefused, Role
from master.web.deps import User, get_station, record, session_cookie, token_of, viewer
from master.web.station import Station

router = APIRouter(prefix="/api", tags=["login"])


class Login(BaseModel):
    user: str = Field(max_length=64, examples=["installer"])
    password: str = Field(max_length=256)


class Session(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`")
    user: str
    role: str


class Me(BaseModel):
    user: str
    role: str
    charger_id: str


class NewPassword(BaseModel):
    user: str = Field(description="the account: installer or viewer",
                      examples=["viewer"])
    password: str = Field(max_length=256)
    current: str | None = Field(default=None, max_length=256,
                                description="your current password: needed to change "
                                "your own (not the viewer's, by the installer)")


class Done(BaseModel):
    ok: bool = True


@router.post("/login", responses={401: {"description": "wrong user or password"},
                                  429: {"description": "too many failures: locked"}})
def login(body: Login, request: Request, response: Response,
          station: Annotated[Station, Depends(get_station)]) -> Session:
    """Open a session: the cookie for a browser, the token for an API client."""
    who = User(body.user[:32], "")
    try:
        token = station.accounts.login(body.user, body.password, peer=_host(request),
                                       now_s=station.clock())
    except LoginRefused as refused:
        record(request, who, "web_login_refused", refused.reason)
        _raise_if_locked(refused)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "wrong user or password (the installer's first password is in "
                            "web-initial-password in the charger's state folder)") from None
    user = station.accounts.session(token, station.clock())
    assert user is not None
    record(request, user, "web_login", f"{user.name} logged in")
    response.set_cookie(session_cookie(station), token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return Session(token=token, user=user.name, role=user.role)


@router.post("/logout")
def logout(request: Request, response: Response, user: Annotated[User, Depends(viewer)],
           station: Annotated[Station, Depends(get_station)]) -> Done:
    token = token_of(request)
    if token is not None:
        station.accounts.logout(token)
    response.delete_cookie(session_cookie(station), path="/")
    record(request, user, "web_logout", f"{user.name} logged out")
    return Done()


@router.get("/me")
def me(user: Annotated[User, Depends(viewer)],
       station: Annotated[Station, Depends(get_station)]) -> Me:
    return Me(user=user.name, role=user.role, charger_id=station.charger_id)


def _host(request: Request) -> str:
    """Throttled per host: a client's port changes with every connection."""
    return "" if request.client is None else request.client.host


def _raise_if_locked(refused: LoginRefused) -> None:
    if refused.retry_after_s > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"{refused.reason}: try again in "
                            f"{max(1.0, refused.retry_after_s):.0f} s",
                            headers={"Retry-After": f"{max(1.0, refused.retry_after_s):.0f}"}
                            ) from None


@router.put("/password", responses={400: {"description": "not an acceptable password"},
                                    403: {"description": "a viewer may change only its "
                                          "own; or the current password is wrong"},
                                    429: {"description": "too many failures: locked"}})
def set_password(body: NewPassword, request: Request,
                 user: Annotated[User, Depends(viewer)],
                 station: Annotated[Station, Depends(get_station)]) -> Done:
    """Set an account's password (installer: both; viewer: its own). Ends that
    account's sessions."""
    if user.role != Role.INSTALLER and body.user != user.name:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"{user.name} may change only its own password")
    try:
        if body.user == user.name:  # one's own: a stolen session must not keep it
            if body.current is None:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "to change your own "
                                    "password, give your current one as `current`")
            station.accounts.change_own_password(body.user, body.current, body.password,
                                                 peer=_host(request), now_s=station.clock())
        else:
            station.accounts.set_password(body.user, body.password)
    except PasswordRefused as refused:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(refused)) from None
    except LoginRefused as refused:
        record(request, user, "web_password_refused", f"password of {body.user}: "
               f"{refused.reason}")
        _raise_if_locked(refused)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong"
                            ) from None
    record(request, user, "web_password_set", f"password of {body.user} set")
    return Done()
