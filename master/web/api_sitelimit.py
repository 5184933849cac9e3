"""An energy manager's site limit over the REST API (issue 12 §4, the REST source).

PUT /api/group/site-limit {"limit_a": 20 or [L1, L2, L3], "valid_s": 60} on the member
that leads: the group's limit on each phase is at most that while it is valid, then back
to its own limit, never above it (master.externallimits). The body is checked by the
MQTT setpoint's rules (master.mqttsetpoint: 0 to the installed limit, valid_s required,
0 withdraws), so both interfaces refuse the same things with the same words; it is a
source of its own ("energy manager (REST)"), beside the back office, the Modbus TCP and
the MQTT energy managers, the lowest of them winning on each phase.

Like the Modbus TCP energy manager, it lives in the master that accepted it: after a
leader change the client's next renewal (it renews before valid_s runs out, as with
Alfen's 60 s setpoints) goes to the new leader (the 409 names it); until then the new
master's group runs on its own limit, which is the installed, safe one. Installer role:
the limit only ever lowers the group, but a viewer may change nothing.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from master.mqttsetpoint import SetpointError, parse_setpoint
from master.service import Master
from master.web.api_group import NOT_LEADER, REFUSED, actor
from master.web.deps import User, installer, leader

SOURCE = "energy manager (REST)"
MAX_VALID_S = 3600.0  # an hour: an energy manager renews far more often
router = APIRouter(prefix="/api", tags=["group"])


class SiteLimit(BaseModel):
    limit_a: float | list[float] | None = Field(
        default=None, description="A per site phase: one number for every phase, or "
        "[L1, L2, L3]; 0 to the installed limit", examples=[20.0, [16.0, 20.0, 32.0]])
    valid_s: float | None = Field(default=None, description=f"seconds it holds (0 withdraws"
                                  f"; at most {MAX_VALID_S:g}): renew before it ends",
                                  examples=[60])


class SiteLimitSet(BaseModel):
    source: str
    limit_a: list[float] | None = Field(description="per site phase L1-L3; null: withdrawn")
    valid_until_unix_s: float | None


@router.put("/group/site-limit", responses={**NOT_LEADER, **REFUSED})
async def set_site_limit(body: SiteLimit, request: Request,
                         user: Annotated[User, Depends(installer)],
                         master: Annotated[Master, Depends(leader)]) -> SiteLimitSet:
    """Lower the group's limit per phase for a while (an energy manager's setpoint)."""
    raw: dict[str, Any] = body.model_dump(exclude_none=True)
    try:
        accepted = parse_setpoint(json.dumps(raw).encode(), source=SOURCE,
                                  installed_limit_a=master.control.installed_limit_a,
                                  max_valid_s=MAX_VALID_S, now_unix_s=time.time(),
                                  max_valid_key=f"at most {MAX_VALID_S:g} s over REST")
    except SetpointError as err:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(err)) from None
    who = actor(request, user)
    master.site_limits.set_rest(accepted.limit, f"{who.name} from {who.address}")
    limit = accepted.limit
    return SiteLimitSet(source=SOURCE,
                        limit_a=None if limit is None else list(limit.limit_a),
                        valid_until_unix_s=None if limit is None else limit.valid_until_unix_s)
