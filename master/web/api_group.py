"""The group's REST API (filled in next): /api/group, /api/group/limit,
/api/group/rebuild, /api/election."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from master.web.deps import User, get_station, viewer
from master.web.station import Station

router = APIRouter(prefix="/api", tags=["group"])


@router.get("/election")
def election(_user: Annotated[User, Depends(viewer)],
             station: Annotated[Station, Depends(get_station)]) -> dict[str, Any]:
    return station.election()
