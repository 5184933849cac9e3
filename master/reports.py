"""What an agent reports each cycle, as the master's control core reads it, and how it is
judged (master.control rule 1).

A report arrives as the peer sent it; `judge` says why it cannot be used (NaN, negative or
absurd values, unknown or missing connectors) or returns None. A refused report takes its
member offline, so the engine reserves what it may still draw: it is never read as 0 A.
The bounds below are physical facts of the io7, not tuning. `MemberInputs` turns a
member's valid reports into the engine's input, and keeps it while they do not change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from master.allocation import ChargerInput, ConnectorInput
from master.allocation.model import CHARGER_LIMIT_RANGE_A
from master.membership import Member, MemberConnector

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
    tag_pseudonym: str = ""  # keyed hash of the session's idTag (master/needs.py); "" none

    def problem(self) -> str | None:
        """Why this report cannot be used, or None."""
        try:
            if self._plausible():
                return None
        except TypeError:  # a value that is not a number: the checks below name it
            pass
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

    def _plausible(self) -> bool:
        """True when `problem` would find nothing: the same bounds in one expression, so
        a valid report (nearly every one) costs a few comparisons. NaN and infinities
        fail them too; a False sends the report through the checks that say why."""
        line, volt = MAX_LINE_CURRENT_A, MAX_VOLTAGE_V
        if not (0.0 <= self.session_energy_wh <= MAX_SESSION_ENERGY_WH
                and 0.0 <= self.offered_a <= line and 0.0 <= self.max_current_a <= line
                and 0 <= self.phases_in_use <= 0b111):
            return False
        cur, v = self.current_a, self.voltage_v
        if (cur is not None and len(cur) != 3) or (v is not None and len(v) != 3):
            return False
        if not self.meter_ok:
            return True
        e = self.energy_import_wh
        return ((cur is None or (0.0 <= cur[0] <= line and 0.0 <= cur[1] <= line
                                 and 0.0 <= cur[2] <= line))
                and (v is None or (0.0 <= v[0] <= volt and 0.0 <= v[1] <= volt
                                   and 0.0 <= v[2] <= volt))
                and (e is None or 0.0 <= e <= MAX_ENERGY_REGISTER_WH))

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
    charger_current_limit_a: float | None = None  # live Charger Current Limit; None: Hello's


def judge(member: Member, report: MemberReport) -> str | None:
    """Why `report` cannot be used for `member` (its connectors as named in its Hello), or
    None: a time that is not one, a Charger Current Limit outside 6-63 A, unknown or
    missing connectors, or a connector's own `problem()`."""
    if out_of_range(report.received_at_s, -1e12, 1e12):
        return f"received_at_s={report.received_at_s!r} is not a time"
    limit = report.charger_current_limit_a
    if limit is not None and out_of_range(limit, *CHARGER_LIMIT_RANGE_A):
        lo, hi = CHARGER_LIMIT_RANGE_A
        return f"charger_current_limit_a={limit!r} is outside [{lo:g}, {hi:g}] (manual 6.3)"
    ids = [c.connector_id for c in report.connectors]
    expected = sorted(c.connector_id for c in member.connectors)
    if sorted(ids) != expected:
        unknown = sorted(set(ids) - set(expected))
        if unknown:
            return f"unknown connector ids {unknown}; the Hello named {expected}"
        return f"connectors {ids} reported; expected each of {expected} once"
    for c in report.connectors:
        problem = c.problem()
        if problem is not None:
            return problem
    return None


def in_force(member: Member, report: MemberReport) -> Member:
    """`member` with the Charger Current Limit of its valid `report` where it carries one
    (changed while running, issue 14), else as it is (the Hello's, for an older agent).
    A new Member only when the value changed, so the cached engine input (master.control
    rule 7: by identity) is rebuilt exactly then."""
    limit = report.charger_current_limit_a
    if limit is None or limit == member.charger_current_limit_a:
        return member
    return replace(member, charger_current_limit_a=limit)


def engine_input(mc: MemberConnector, r: ConnectorReport | None) -> ConnectorInput:
    """One connector's engine input from its Hello entry and its last valid report (None:
    offline, its hard max, so the engine reserves its fail-safe current)."""
    if r is None:
        return ConnectorInput(connector_id=mc.connector_id, wiring=mc.wiring,
                              max_current_a=mc.hard_max_a)
    # An untrusted meter counts 0 A: with the CT on the grid incomer, that
    # overstates the other loads, never understates them.
    measured = r.current_a if r.meter_ok and r.current_a is not None else (0.0,) * 3
    return ConnectorInput(
        connector_id=mc.connector_id, wiring=mc.wiring,
        max_current_a=min(mc.hard_max_a, r.max_current_a),
        wants_power=r.wants_power, ev_lines=r.ev_lines(),
        measured_a=(measured[0], measured[1], measured[2]),
        session_energy_wh=r.session_energy_wh,
    )


class MemberInputs:
    """One member's engine input, rebuilt (and so validated) only where it changed: a
    connector whose Hello entry and report are the same as last cycle keeps its
    `ConnectorInput`, and the charger keeps its `ChargerInput` when all of them and its
    online verdict are unchanged. An idle socket's input is built once per change, not
    once per cycle."""

    def __init__(self) -> None:
        # per connector id: (its Hello entry, the report used or None, the input)
        self._conns: dict[int, tuple[MemberConnector, ConnectorReport | None,
                                     ConnectorInput]] = {}
        self._last: ChargerInput | None = None

    def build(self, member: Member, reports: Mapping[int, ConnectorReport] | None
              ) -> ChargerInput:
        """`member`'s input from its valid reports by connector id; None: offline."""
        conns = []
        fresh = False
        for mc in member.connectors:
            r = None if reports is None else reports.get(mc.connector_id)
            cached = self._conns.get(mc.connector_id)
            if cached is not None and cached[0] is mc and (
                    cached[1] is r or (r is not None and cached[1] == r)):
                conns.append(cached[2])
                continue
            fresh = True
            ci = engine_input(mc, r)
            self._conns[mc.connector_id] = (mc, r, ci)
            conns.append(ci)
        online = reports is not None
        last = self._last
        if (not fresh and last is not None and last.online is online
                and last.charger_id == member.charger_id
                and last.current_limit_a == member.charger_current_limit_a
                and len(last.connectors) == len(conns)):
            return last
        self._last = None  # refused below: the next build tries again, never the old one
        self._last = ChargerInput(charger_id=member.charger_id, online=online,
                                  current_limit_a=member.charger_current_limit_a,
                                  connectors=tuple(conns))
        return self._last
