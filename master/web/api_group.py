"""The group's REST API, served by the member that leads (issue 14 §2).

GET /api/group: the group's status as `io7ctl status --json` gives it (the GroupStatus,
protobuf field names) plus, in words as io7ctl words them (master/statuswords.py), why
each phase's limit is lowered (`limited_by`) and why each connector got what it got
(`reason_words`). PUT /api/group/limit and POST /api/group/rebuild make the GroupAdmin
changes through the same Master methods as gRPC (master/admin.py rule 6): same rules,
same messages (400), same security-log lines with the web user as who. GET
/api/group/security-log: the master's log. On a member that does not lead, every
/api/group route answers 409 with {"leader", "url"} (deps.leader). GET /api/election
and GET /api/security-log (this charger's own log) answer on every member.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, Field

from hw.securitylog import SecurityLog
from master import audit, statuswords
from master.errors import RequestError
from master.service import Master
from master.web.deps import User, get_station, installer, leader, peer, viewer
from master.web.station import Station
from protos.io7.cluster.v1 import cluster_pb2 as pb

router = APIRouter(prefix="/api", tags=["group"])
Responses = dict[int | str, dict[str, Any]]
NOT_LEADER: Responses = {409: {"description": "this member does not lead: {\"detail\": "
                               "{\"problem\", \"leader\", \"url\"}} names the one that does"}}
REFUSED: Responses = {400: {"description": "refused by the group's rules (the message "
                            "says why)"}}


class Election(BaseModel):
    term: int
    leader_id: str | None = Field(description="null during an election")
    leading: bool = Field(description="this member leads (serves /api/group)")
    members: dict[str, bool] = Field(description="charger id -> online")
    leader_url: str | None = Field(description="the leading member's UI")


class GroupLimit(BaseModel):
    limit_a: float = Field(description="per phase, A: at most the installed limit",
                           examples=[40.0])


class GroupLimitSet(BaseModel):
    limit_a: float
    previous_limit_a: float
    installed_limit_a: float


class Rebuild(BaseModel):
    removed: list[str] = Field(default_factory=list, max_length=64,
                               description="charger ids physically removed (confirmed)")


class Rebuilt(BaseModel):
    removed: list[str]
    kept: list[str]
    offline_kept: list[str] = Field(description="offline, keeping their reservation")
    refused_connected: list[str] = Field(description="named but connected: not removed")


class SecurityEvent(BaseModel):
    time_utc: str
    kind: str
    who: str
    peer: str
    detail: str


def actor(request: Request, user: User) -> audit.Actor:
    return audit.Actor(name=f"web:{user.name}", address=peer(request))


def status_json(status: pb.GroupStatus) -> dict[str, Any]:
    """The GroupStatus as io7ctl --json prints it, with the words of io7ctl status."""
    out = MessageToDict(status, preserving_proto_field_name=True,
                        always_print_fields_with_no_presence=True)
    for p, raw in zip(status.phases, out.get("phases", []), strict=True):
        raw["limited_by"] = statuswords.phase_limited_by(p)
    for m, raw_m in zip(status.members, out.get("members", []), strict=True):
        for c, raw_c in zip(m.connectors, raw_m.get("connectors", []), strict=True):
            raw_c["reason_words"] = statuswords.connector_reason(status, c)
    return out


@router.get("/group", responses=NOT_LEADER)
async def group(_user: Annotated[User, Depends(viewer)],
                master: Annotated[Master, Depends(leader)]) -> dict[str, Any]:
    """The group's status after the last cycle, with every reason in words."""
    return status_json(master.status)


@router.put("/group/limit", responses={**NOT_LEADER, **REFUSED})
async def set_limit(body: GroupLimit, request: Request,
                    user: Annotated[User, Depends(installer)],
                    master: Annotated[Master, Depends(leader)]) -> GroupLimitSet:
    """Lower (or restore) the Total Group Limit per phase; never above the installed
    limit of io7.toml (`io7ctl set-limit`)."""
    try:
        previous, installed = master.set_group_limit(body.limit_a, actor(request, user))
    except RequestError as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, err.problem) from None
    return GroupLimitSet(limit_a=body.limit_a, previous_limit_a=previous,
                         installed_limit_a=installed)


@router.post("/group/rebuild", responses={**NOT_LEADER, **REFUSED})
async def rebuild(body: Rebuild, request: Request,
                  user: Annotated[User, Depends(installer)],
                  master: Annotated[Master, Depends(leader)]) -> Rebuilt:
    """Rebuild the group (manual 6.4.2): forget only the named chargers that are not
    connected; an empty list forgets nothing and lists the offline ones."""
    try:
        plan = master.rebuild_group(body.removed, actor(request, user))
    except RequestError as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, err.problem) from None
    return Rebuilt(removed=list(plan.removed), kept=list(plan.kept),
                   offline_kept=list(plan.offline_kept),
                   refused_connected=list(plan.refused_connected))


@router.get("/group/security-log", responses=NOT_LEADER)
async def group_security_log(
        _user: Annotated[User, Depends(viewer)],
        master: Annotated[Master, Depends(leader)],
        max_entries: Annotated[int, Query(ge=1, le=audit.MAX_ENTRIES)] = 100
) -> list[SecurityEvent]:
    """The master's security log, oldest first."""
    return _tail(master.security, max_entries)


@router.get("/election")
async def election(_user: Annotated[User, Depends(viewer)],
                   station: Annotated[Station, Depends(get_station)]) -> Election:
    """Who leads, in which term, and which members are online."""
    return Election(**station.election(), leader_url=station.leader_web_url())


@router.get("/security-log")
async def security_log(
        _user: Annotated[User, Depends(viewer)],
        station: Annotated[Station, Depends(get_station)],
        max_entries: Annotated[int, Query(ge=1, le=audit.MAX_ENTRIES)] = 100
) -> list[SecurityEvent]:
    """This charger's security log (logins, refusals, changes with who), oldest first."""
    return _tail(station.security, max_entries)


def _tail(log: SecurityLog, n: int) -> list[SecurityEvent]:
    return [SecurityEvent(time_utc=e.time_utc, kind=e.kind, who=e.who, peer=e.peer,
                          detail=e.detail) for e in log.tail(n)]
