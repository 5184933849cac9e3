"""GET /metrics: this io7d in the Prometheus text format (issue 14 §3).

The families and their names are master/metricsview.py's; this router only gathers, at
each scrape, what the station knows now (`scrape_of`): the group's status and counters
while this member leads, its own agent's state, lease expiries and OCPP link, and the
election. It runs on the event loop (an `async` route), so one scrape reads one cycle's
status, never a half-updated one.

Without a login by default (a Prometheus server on the LAN); with `[web]
metrics_token_file` set, a request must carry `Authorization: Bearer <token>` (401
otherwise, compared in constant time).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from master.metricsview import Election, Ocpp, Scrape, StationCollector
from master.web.deps import get_station
from master.web.station import Station

router = APIRouter(tags=["metrics"])


def scrape_of(station: Station) -> Scrape:
    """What `station` knows now, for master.metricsview."""
    agent = station.agent
    e = station.election()
    ocpp = None
    if agent.ocpp is not None:
        queued = 0 if agent.sessions is None else agent.sessions.store.pending_count()
        ocpp = Ocpp(state=agent.ocpp.state.value, queued=queued)
    master = station.master()
    # Before the agent's first step (a scrape at io7d's start) the charger shows its id,
    # lease and election, no connectors (Station.charger_state).
    charger = station.charger_state()
    return Scrape(group=station.config.master.group.name, charger_id=station.charger_id,
                  charger=charger,
                  lease_expiries=agent.applier.lease_expiries(agent.clock()),
                  election=Election(term=int(e["term"]), leader_id=e["leader_id"],
                                    leading=bool(e["leading"]), members=dict(e["members"])),
                  ocpp=ocpp, status=None if master is None else master.status,
                  stats=None if master is None else master.stats)


def _authorised(request: Request, station: Station) -> None:
    web = station.config.web
    token = None if web is None else web.metrics_token
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "this /metrics needs `Authorization: Bearer <token>` with the "
                            "token in io7.toml [web] metrics_token_file",
                            headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}},
                             "description": "the Prometheus text format (OpenMetrics "
                             "when the Accept header asks for it)"},
                       401: {"description": "a metrics token is configured and missing"}})
async def metrics(request: Request,
                  station: Annotated[Station, Depends(get_station)]) -> Response:
    """This charger, the election and (on the leading member) the group, as Prometheus
    metrics; no login unless io7.toml [web] metrics_token_file is set."""
    _authorised(request, station)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(lambda: scrape_of(station)))
    # Prometheus asks for OpenMetrics, curl for nothing: each gets what it reads
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry), media_type=content_type)
