"""What an agent reports each cycle, as the master's control core reads it, and how it is
judged (master.control rule 1).

A report arrives as the peer sent it; `judge` says why it cannot be used (NaN, negative or
absurd values, unknown or missing connectors) or returns None. A refused report takes its
member offline, so the engine reserves what it may still draw: it is never read as 0 A.
The bounds below are physical facts of the io7, not tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from master.membership import Member

Line3 = tuple[float, float, float]

MAX_LINE_CURRENT_A = 80.0  # the engine's bound on a connector max; an io7 line carries 32 A
MAX_VOLTAGE_V = 500.0  # 230/400 V supply (manual ch. 2): no line-to-neutral reading nears 500 V
MAX_SESSION_ENERGY_WH = 1e9  # the engine's bound (ConnectorInput.session_energy_wh)
MAX_ENERGY_REGISTER_WH = 1e12  # far above any meter's register (999 999.99 kWh)


class PilotState(StrEnum):
    """IEC 61851-1 control pilot state (proto PilotState)."""

    A = "A"  # no EV
    B = "B"  # EV connected, not ready
    C = "C"  # charging
    D = "D"  # charging with ventilation
    E = "E"  # no power / short
    F = "F"  # EVSE fault
    UNKNOWN = "unknown"


class ConnectorStatus(StrEnum):
    """OCPP 1.6 ChargePointStatus (proto ConnectorStatus)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    UNKNOWN = "Unknown"


def out_of_range(value: float | None, lo: float, hi: float) -> bool:
    """True when `value` is missing, NaN/infinite or outside [lo, hi]."""
    return value is None or not (math.isfinite(value) and lo <= value <= hi)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorReport:
    """One connector's live state from an AgentState (proto ConnectorState).

    Per-line values are in the connector's own line order; None = not measured. Values
    are as the peer sent them: `problem()` judges them, so a bad report reaches the control
    loop and takes its member offline instead of failing in the shell.
    """

    connector_id: int
    pilot_state: PilotState = PilotState.UNKNOWN
    status: ConnectorStatus = ConnectorStatus.UNKNOWN
    current_a: Line3 | None = None
    voltage_v: Line3 | None = None
    energy_import_wh: float | None = None
    session_energy_wh: float = 0.0
    phases_in_use: int = 0  # bit k: the EV loads connector line L(k+1); 0 = unknown
    offered_a: float = 0.0
    max_current_a: float = 0.0
    wants_power: bool = False
    meter_ok: bool = True  # False: the measured fields must not be trusted (nor judged)

    def problem(self) -> str | None:
        """Why this report cannot be used, or None."""
        c = f"connector {self.connector_id}"
        checks: list[tuple[str, float | None, float, float]] = [
            ("session_energy_wh", self.session_energy_wh, 0.0, MAX_SESSION_ENERGY_WH),
            ("offered_a", self.offered_a, 0.0, MAX_LINE_CURRENT_A),
            ("max_current_a", self.max_current_a, 0.0, MAX_LINE_CURRENT_A),
        ]
        if self.meter_ok:
            for name, values, hi in (("current_a", self.current_a, MAX_LINE_CURRENT_A),
                                     ("voltage_v", self.voltage_v, MAX_VOLTAGE_V)):
                for k, v in enumerate(values or ()):
                    checks.append((f"{name}[L{k + 1}]", v, 0.0, hi))
            if self.energy_import_wh is not None:
                checks.append(("energy_import_wh", self.energy_import_wh, 0.0,
                               MAX_ENERGY_REGISTER_WH))
        for name, value, lo, hi in checks:
            if out_of_range(value, lo, hi):
                return f"{c} {name}={value!r} is outside [{lo:g}, {hi:g}]"
        for name, values in (("current_a", self.current_a), ("voltage_v", self.voltage_v)):
            if values is not None and len(values) != 3:
                return f"{c} {name} needs 3 values (L1, L2, L3), got {len(values)}"
        if not 0 <= self.phases_in_use <= 0b111:
            return f"{c} phases_in_use={self.phases_in_use} is not a mask of L1-L3 (0-7)"
        return None

    def ev_lines(self) -> tuple[bool, bool, bool] | None:
        """The lines the EV loads, or None when unknown (every wired line counts)."""
        m = self.phases_in_use
        return None if m == 0 else (bool(m & 1), bool(m & 2), bool(m & 4))


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberReport:
    """One AgentState: `sequence` from the agent's stream, `received_at_s` the master's
    monotonic clock at receipt."""

    charger_id: str
    sequence: int
    received_at_s: float
    connectors: tuple[ConnectorReport, ...]
    term_applied: int = 0  # the term of the Limits the agent obeys (control rule 6); 0 = none
    highest_term_seen: int = 0
    limits_refused_reason: str = ""  # the agent's own word that it refuses ours


def judge(member: Member, report: MemberReport) -> str | None:
    """Why `report` cannot be used for `member` (its connectors as named in its Hello), or
    None: a time that is not one, unknown or missing connectors, or a connector's own
    `problem()`."""
    if out_of_range(report.received_at_s, -1e12, 1e12):
        return f"received_at_s={report.received_at_s!r} is not a time"
    ids = [c.connector_id for c in report.connectors]
    expected = sorted(c.connector_id for c in member.connectors)
    unknown = sorted(set(ids) - set(expected))
    if unknown:
        return f"unknown connector ids {unknown}; the Hello named {expected}"
    if sorted(ids) != expected:
        return f"connectors {ids} reported; expected each of {expected} once"
    for c in report.connectors:
        problem = c.problem()
        if problem is not None:
            return problem
    return None
