"""The LED a connector shows (product.md 2.2), as the group page draws it. Pure.

The agent drives the real LED from its connector machine (agent/transitions.py STATES);
the master sees only what crosses the wire: the OCPP status, the pilot state and the
offer. This module maps those back onto the same table, so the page shows the colour the
installer sees on the charger:
1. Available: green (ready). Preparing: magenta (cable inserted) until a current is
   offered, then yellow (offering, waiting for the EV). SuspendedEVSE: yellow (waiting to
   charge: paused or not yet offered). Charging: blue, blinking. SuspendedEV: magenta /
   blue. Finishing: magenta. Unavailable: magenta / yellow (out of order). Faulted: red.
2. What the wire cannot tell is said, not guessed: a fault's own sequence (ch. 7) shows
   as plain red, smart charging's "postponed" (blue, solid) as yellow, a booting charger
   (white, reported Unavailable) as out of order; an offline member's LED is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.capabilities import LedPattern, LedPatterns
from protos.io7.cluster.v1 import cluster_pb2 as pb


@dataclass(frozen=True, slots=True, kw_only=True)
class Led:
    """What the page draws: colours (a sequence cycles), blinking, and the manual's words."""

    colours: tuple[str, ...]
    blinking: bool
    meaning: str

    def as_json(self) -> dict[str, object]:
        return {"colours": list(self.colours), "blinking": self.blinking,
                "meaning": self.meaning}


def _led(pattern: LedPattern, meaning: str) -> Led:
    return Led(colours=tuple(c.value for c in pattern.colours), blinking=pattern.blinking,
               meaning=meaning)


_BY_STATUS: dict[int, Led] = {
    pb.CONNECTOR_STATUS_AVAILABLE: _led(LedPatterns.READY, "ready"),
    pb.CONNECTOR_STATUS_PREPARING: _led(LedPatterns.CABLE_INSERTED, "cable inserted"),
    pb.CONNECTOR_STATUS_CHARGING: _led(LedPatterns.CHARGING, "charging"),
    pb.CONNECTOR_STATUS_SUSPENDED_EVSE: _led(LedPatterns.WAITING, "waiting to charge"),
    pb.CONNECTOR_STATUS_SUSPENDED_EV: _led(LedPatterns.SUSPENDED_EV, "suspended by the EV"),
    pb.CONNECTOR_STATUS_FINISHING: _led(LedPatterns.CABLE_INSERTED, "cable inserted"),
    pb.CONNECTOR_STATUS_RESERVED: _led(LedPatterns.WAITING, "waiting to charge"),
    pb.CONNECTOR_STATUS_UNAVAILABLE: _led(LedPatterns.UNAVAILABLE, "out of order"),
    pb.CONNECTOR_STATUS_FAULTED: _led(LedPatterns.FAULT, "fault"),
}
STARTING = _led(LedPatterns.STARTING, "starting up")
OFFERING = _led(LedPatterns.WAITING, "waiting to charge")
UNKNOWN = Led(colours=(), blinking=False, meaning="unknown: the charger is offline")


def connector_led(status: int, offered_a: float, *, online: bool = True) -> Led:
    """The LED of a connector with this pb.ConnectorStatus and offer (rules 1, 2)."""
    if not online:
        return UNKNOWN
    if status == pb.CONNECTOR_STATUS_PREPARING and offered_a > 0.0:
        return OFFERING  # the agent's OFFERING state: PWM on, waiting for the EV
    return _BY_STATUS.get(status, STARTING)
