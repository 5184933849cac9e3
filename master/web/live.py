"""The live group page's data: SSE `/api/events` and the 24 h `/api/history`.

1. `/api/events` sends one JSON event (`data: {...}`) after every status change of the
   running master, and at least one per second while nothing changes (the page shows how
   fresh it is), never more than MAX_RATE_HZ a second. On a member that does not lead, an
   event says which member leads and its UI's URL, once a second, so a page left open
   follows a takeover by itself. The stream ends when its session does (logout, a new
   password, idle expiry): checked before every event, without keeping it alive.
2. An event is built from the master's GroupStatus by `live_event` (pure): per phase the
   limit in force, CT reading, other loads, reserved for offline chargers, allocated and
   what the group's chargers draw on it; per connector its status, LED (leds.py), offer,
   measured draw and the reason in words, worded as `io7ctl status` words it.
3. The history (history.py) is fed by a sampler task this router's lifespan starts with
   the app (every SAMPLE_S, from the running master's status, whatever page is open);
   `/api/history?points=N` returns the day thinned to N points per series.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from master import statuswords as wording
from master.web.deps import User, get_station, token_of, viewer
from master.web.history import SLOTS, ConnectorPoint, History, PhasePoint
from master.web.leds import connector_led
from master.web.station import Station
from protos.io7.cluster.v1 import cluster_pb2 as pb

HEARTBEAT_S = 1.0  # issue 14 §1: the page updates at least every second
MAX_RATE_HZ = 5.0  # a master cycling faster than this is sampled, not streamed whole
SAMPLE_S = 2.0  # the sampler's feed; history keeps one value per 10 s slot
log = structlog.get_logger("io7d.web")
Clock = Callable[[], float]


def _phase(value: int) -> str:
    return "" if value == pb.PHASE_UNSPECIFIED else pb.Phase.Name(value).removeprefix("PHASE_")


def _enum(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def drawn_by_phase(status: pb.GroupStatus) -> dict[int, float]:
    """What the group's connectors draw per site phase (measured, through each
    connector's wiring), A. Unmeasured connectors count 0 here: this is the chart's
    'drawn', not the allocation's reservation."""
    out: dict[int, float] = {p.phase: 0.0 for p in status.phases}
    for m in status.members:
        for c in m.connectors:
            if not c.HasField("measured_a"):
                continue
            w, a = c.wiring, c.measured_a
            for site, amps in ((w.l1, a.l1), (w.l2, a.l2), (w.l3, a.l3)):
                if site in out:
                    out[site] += amps
    return out


def _draw(c: pb.ConnectorStatusView) -> list[float] | None:
    if not c.HasField("measured_a"):
        return None
    return [round(c.measured_a.l1, 2), round(c.measured_a.l2, 2), round(c.measured_a.l3, 2)]


def live_event(status: pb.GroupStatus, *, charger_id: str, now_unix_s: float
               ) -> dict[str, Any]:
    """The page's view of one GroupStatus (rule 2). Pure."""
    drawn = drawn_by_phase(status)
    phases = [{
        "phase": _phase(p.phase),
        "limit_a": round(p.limit_a, 2),
        "configured_limit_a": round(p.configured_limit_a, 2),
        "limit_source": p.limit_source,
        "limited_by": wording.phase_limited_by(p),
        "ct_a": round(p.ct_a, 2) if p.HasField("ct_a") else None,
        "other_load_a": round(p.other_load_a, 2),
        "reserved_offline_a": round(p.reserved_offline_a, 2),
        "available_a": round(p.available_a, 2),
        "allocated_a": round(p.allocated_a, 2),
        "drawn_a": round(drawn.get(p.phase, 0.0), 2),
    } for p in status.phases]
    members = []
    for m in status.members:
        connectors = [{
            "connector_id": c.connector_id,
            "status": _enum(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_"),
            "led": connector_led(c.status, c.offered_a, online=m.online).as_json(),
            "offer_a": round(c.offered_a, 2),
            "allocated_a": round(c.allocated_a, 2),
            "draw_a": _draw(c),
            "reason": _enum(pb.LimitReason, c.reason, "LIMIT_REASON_"),
            "reason_words": wording.connector_reason(status, c),
        } for c in m.connectors]
        members.append({"charger_id": m.charger_id, "online": m.online,
                        "offline_reason": m.offline_reason,
                        "limits_refused_reason": m.limits_refused_reason,
                        "connectors": connectors})
    return {
        "leading": True, "charger_id": charger_id, "at_unix_s": round(now_unix_s, 3),
        "group": status.group, "master_id": status.master_id, "term": status.term,
        "cycle": status.cycle,
        "mode": _enum(pb.LoadBalancingMode, status.mode, "LOAD_BALANCING_MODE_"),
        "ct_status": _enum(pb.CtStatus, status.ct_status, "CT_STATUS_"),
        "ct_fault": status.ct_fault,
        "offline_strategy": _enum(pb.OfflineStrategy, status.offline_strategy,
                                  "OFFLINE_STRATEGY_"),
        "phases": phases, "members": members,
    }


def history_points(status: pb.GroupStatus
                   ) -> tuple[dict[str, PhasePoint], dict[str, ConnectorPoint]]:
    """One GroupStatus as the history's sample: per phase limit/CT/drawn/allocated, per
    connector ("charger/connector") offer and highest measured line current."""
    drawn = drawn_by_phase(status)
    phases = {_phase(p.phase): PhasePoint(
        limit_a=p.limit_a, ct_a=p.ct_a if p.HasField("ct_a") else None,
        drawn_a=drawn.get(p.phase, 0.0), allocated_a=p.allocated_a) for p in status.phases}
    connectors = {}
    for m in status.members:
        for c in m.connectors:
            draw = _draw(c)
            connectors[f"{m.charger_id}/{c.connector_id}"] = ConnectorPoint(
                offer_a=c.offered_a, draw_a=None if draw is None else max(draw))
    return phases, connectors


def not_leading_event(station: Station, now_unix_s: float) -> dict[str, Any]:
    """What a member that does not lead sends: who leads and where its UI is."""
    return {"leading": False, "charger_id": station.charger_id,
            "at_unix_s": round(now_unix_s, 3), "leader": station.leader_id(),
            "url": station.leader_web_url()}


async def events(station: Station, *, wall: Clock = time.time,
                 heartbeat_s: float = HEARTBEAT_S,
                 alive: Callable[[], bool] = lambda: True) -> AsyncGenerator[str, None]:
    """The SSE stream of rule 1 while `alive()` (its session is open; Starlette cancels
    it when the client leaves)."""
    yield "retry: 2000\n\n"  # the browser reconnects after 2 s if io7d restarts
    while alive():
        master = station.master()
        if master is None:
            event = not_leading_event(station, wall())
        else:
            event = live_event(master.status, charger_id=station.charger_id,
                               now_unix_s=wall())
        yield f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
        started = asyncio.get_running_loop().time()
        if master is None:
            await asyncio.sleep(heartbeat_s)
            continue
        with contextlib.suppress(TimeoutError):
            async with master.status_changed:
                await asyncio.wait_for(master.status_changed.wait(), heartbeat_s)
        spent = asyncio.get_running_loop().time() - started
        await asyncio.sleep(max(0.0, 1.0 / MAX_RATE_HZ - spent))


async def sample_forever(station: Station, history: History, *, wall: Clock = time.time,
                         every_s: float = SAMPLE_S) -> None:
    """Rule 3: feed `history` from the running master, if any, every `every_s`."""
    while True:
        master = station.master()
        if master is not None and master.status.cycle > 0:
            phases, connectors = history_points(master.status)
            history.record(wall(), phases, connectors)
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Starts the sampler with the app and stops it with the app."""
    station: Station = app.state.station
    history = History()
    app.state.history = history
    task = asyncio.create_task(sample_forever(station, history), name="io7d-web-history")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


router = APIRouter(prefix="/api", tags=["live"], lifespan=lifespan)


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "one JSON event per status change, at "
                             "least one a second (module doc rule 1)"}})
def live_events(request: Request, _user: Annotated[User, Depends(viewer)],
                station: Annotated[Station, Depends(get_station)]) -> StreamingResponse:
    """The live group page's stream (Server-Sent Events), while the session lasts."""
    token = token_of(request)

    def alive() -> bool:
        return token is not None and station.accounts.alive(token, station.clock())

    return StreamingResponse(events(station, alive=alive), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store",
                                      "X-Accel-Buffering": "no"})


@router.get("/history", response_class=JSONResponse, responses={200: {
    "description": "{interval_s, t: [unix s], phases: {L1: {limit_a: [A|null], ...}}, "
    "connectors: {\"io7-01/1\": {offer_a, draw_a}}}"}})
async def history(request: Request, _user: Annotated[User, Depends(viewer)],
            points: Annotated[int, Query(ge=1, le=SLOTS,
                                         description="points per series")] = 720
            ) -> JSONResponse:
    """The last 24 h of this member's group status, 10 s samples thinned to `points`
    per series (history.py rule 4: bounded work, so it runs on the loop, where the sampler
    writes: never a half-written slot); empty while it has not led."""
    kept: History | None = getattr(request.app.state, "history", None)
    # JSONResponse: json.dumps at once, not FastAPI's walk of every value (~100 k)
    return JSONResponse((History() if kept is None else kept).query(points))
