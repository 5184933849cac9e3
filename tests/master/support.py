"""Builders for the master's core tests: members, reports, TOML text, a virtual-time rig."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from master.allocation import GroupConfig, Phase
from master.control import CycleResult, GroupControl
from master.membership import Member, MemberConnector, Wiring
from master.reports import ConnectorReport, MemberReport
from master.statusview import ConnectorLimit

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
THREE: Wiring = (L1, L2, L3)


def member(cid: str, *, connectors: int = 2, wiring: Wiring = THREE, hard_max_a: float = 32.0,
           limit_a: float = 63.0, group: str = "garage") -> Member:
    return Member(
        charger_id=cid, group=group, charger_current_limit_a=limit_a,
        connectors=tuple(MemberConnector(connector_id=n, wiring=wiring, hard_max_a=hard_max_a)
                         for n in range(1, connectors + 1)),
    )


def conn_report(cid: int, **kw: Any) -> ConnectorReport:
    base: dict[str, Any] = {"wants_power": True, "max_current_a": 32.0,
                            "current_a": (0.0, 0.0, 0.0), "voltage_v": (230.0, 230.0, 230.0)}
    base.update(kw)
    return ConnectorReport(connector_id=cid, **base)


def group(**kw: Any) -> GroupConfig:
    """Quick dynamics unless asked: no ramp limit, no demand cap, no settle time (so the
    start-of-term hold is exactly one lease, 3 s)."""
    base: dict[str, Any] = {"name": "garage", "ramp_up_a": 80.0, "demand_cap_after_s": 86400.0,
                            "settle_s": 0.0, "lease_s": 3.0}
    base.update(kw)
    return GroupConfig(**base)


@dataclass
class Rig:
    """A GroupControl driven one second per cycle, like the master's shell would."""

    control: GroupControl
    now: float = 0.0
    seq: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, g: GroupConfig, members: list[Member], *, term: int = 7,
              connect: bool = True) -> Rig:
        rig = cls(GroupControl(group=g, term=term, members=members, now_s=0.0))
        if connect:
            for m in members:
                rig.control.member_connected(m, 0.0)
        return rig

    def send(self, cid: str, *conns: ConnectorReport) -> str | None:
        self.seq[cid] = self.seq.get(cid, 0) + 1
        return self.control.report(MemberReport(charger_id=cid, sequence=self.seq[cid],
                                                received_at_s=self.now, connectors=conns))

    def send_default(self, m: Member, **kw: Any) -> str | None:
        return self.send(m.charger_id, *(conn_report(c.connector_id, **kw)
                                         for c in m.connectors))

    def step(self, *, reports: Mapping[str, Member] | None = None,
             ct: Mapping[Phase, float] | None = None, dt: float = 1.0) -> CycleResult:
        """Advance `dt`, let `reports` members send a default report, feed the CT, cycle."""
        self.now += dt
        for m in (reports or {}).values():
            self.send_default(m)
        if ct is not None:
            self.control.ct_sample(ct, self.now)
        return self.control.cycle(self.now)


def amps(result: CycleResult) -> dict[tuple[str, int], float]:
    return {(cid, lim.connector_id): lim.current_a
            for cid, lims in result.limits.items() for lim in lims}


def limit_of(result: CycleResult, cid: str, connector_id: int) -> ConnectorLimit:
    return next(lim for lim in result.limits[cid] if lim.connector_id == connector_id)


def toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer (scalars, lists, nested tables) for config fixtures."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    def table(prefix: str, d: Mapping[str, Any]) -> None:
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in d.items():
            if not isinstance(v, Mapping):
                lines.append(f"{k} = {value(v)}")
        for k, v in d.items():
            if isinstance(v, Mapping):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines) + "\n"
