"""The master's external site limits as its service runs them (issue 12 §4): the shell
around master.externallimits.

1. Back office: every AgentState of the group's local controller (`[group]
   local_controller`) carries its ChargePointMaxProfile in force (or none): that limit,
   the same on every phase, bounds the whole group (OCPP Local Controller pattern). A
   state without one withdraws it. When that charger goes offline its states stop, so
   its last limit stays until its end, then expires (the safer side). An online
   controller's limit is given one lease of grace past its end (externallimits rule 3).
2. Energy manager: master/emsserver.py hands in each accepted write (or a withdrawal);
   the home energy manager's MQTT setpoint (master/mqtt.py) and an energy manager's
   REST setpoint (master/web/api_sitelimit.py) likewise, each in a slot of its own.
3. Each cycle, `now()` expires what has run out and returns the limits in force with
   the wall clock they were judged at.
4. Every change goes to the security log (kind external_limit) naming its source; a
   limit that cannot be applied (NaN, negative, absurd) is refused with a warning and
   the previous one stays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import structlog

from hw.securitylog import SecurityLog
from master import audit
from master.externallimits import ExternalLimit, ExternalLimitError, ExternalLimits, InForce
from protos.io7.cluster.v1 import cluster_pb2 as pb

BACK_OFFICE, EMS, MQTT, REST = "back_office", "ems", "mqtt", "rest"  # the slots
log = structlog.get_logger("master.sitelimits")


class SiteLimits:
    """The group's external limits, fed by the service (rules 1-4)."""

    def __init__(self, *, security: SecurityLog, local_controller: str | None,
                 grace_s: float, wall: Callable[[], float] = time.time) -> None:
        self.security, self.local_controller = security, local_controller
        self.grace_s, self.wall = grace_s, wall
        self.limits = ExternalLimits()
        self._refused = ""  # the last refusal warned about

    def from_agent(self, charger_id: str, state: pb.AgentState) -> None:
        """Rule 1: an AgentState (only the local controller's count)."""
        if charger_id != self.local_controller:
            return
        limit = None
        if state.HasField("station_limit"):
            got = state.station_limit
            try:
                if not math.isfinite(got.limit_a):  # inf would mean "no limit" here
                    raise ExternalLimitError(f"limit {got.limit_a!r} A is not a number")
                limit = ExternalLimit(
                    source=got.source or "back office", limit_a=(got.limit_a,) * 3,
                    valid_until_unix_s=got.valid_until_unix_ms / 1000
                    if got.valid_until_unix_ms else None, grace_s=self.grace_s)
            except ExternalLimitError as err:
                if str(err) != self._refused:
                    self._refused = str(err)
                    log.warning("back office limit refused: the previous one stays",
                                charger_id=charger_id, why=str(err))
                return
        self._record(self.limits.put(BACK_OFFICE, limit, self.wall()),
                     f"local controller {charger_id}")

    def set_ems(self, limit: ExternalLimit | None) -> None:
        """Rule 2: the energy manager's accepted write, or None to withdraw."""
        self._record(self.limits.put(EMS, limit, self.wall()), "energy manager")

    def set_mqtt(self, limit: ExternalLimit | None) -> None:
        """Rule 2: the MQTT setpoint in force (master/mqtt.py), or None to withdraw."""
        self._record(self.limits.put(MQTT, limit, self.wall()), "MQTT setpoint")

    def set_rest(self, limit: ExternalLimit | None, who: str) -> None:
        """Rule 2: an energy manager's setpoint over the REST API (master/web/
        api_sitelimit.py), or None to withdraw; `who` made it."""
        self._record(self.limits.put(REST, limit, self.wall()), f"REST setpoint by {who}")

    def now(self) -> tuple[InForce, float]:
        """Rule 3: the limits in force now, and now (Unix s)."""
        now = self.wall()
        for line in self.limits.expire(now):
            self._record(line, "")
        return self.limits.in_force(now), now

    def _record(self, change: str | None, via: str) -> None:
        if change is None:
            return
        detail = f"{via}: {change}" if via else change
        log.info("external limit", change=detail)
        audit.record(self.security, audit.Kind.EXTERNAL_LIMIT, None, detail)
