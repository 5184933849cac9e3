"""Agent-only mode (scenario A, manual 6.4.1): one charger, no master, no LAN.

Each second the agent runs the same allocation as a master (`master.allocation`) in-process
for its own connectors against its Site Limit ([agent_only]; without it, only the Charger
Current Limit), with its own External CT Clamps when configured, and feeds the result to
the same limit applier as a master's Limits (term 0, a lease of a few cycles). The engine's
state comes back in each cycle; a failed clamp read keeps the last sample, which ages into
stale/lost in the engine (never read as 0 A).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from agent.config import AgentConfig
from agent.connector import ConnectorOutput
from agent.limits import MasterLimits
from hw.capabilities import MeterReading
from hw.errors import DeviceError
from hw.modbus.ctkit import ModbusCtKit
from hw.modbus.transport import ModbusBus
from master.allocation import ChargerInput, ConnectorInput, CtReading, GroupConfig, Snapshot

if TYPE_CHECKING:
    from master.allocation import EngineState

AGENT_ONLY_CYCLE_S = 1.0  # the master's default cycle (architecture.md, time and rates)
AGENT_ONLY_LEASE_S = 3.0  # 3 cycles, as a master's default lease


class LocalBalancer:
    """The in-process allocation of agent-only mode, with its optional CT clamps."""

    def __init__(self, config: AgentConfig, log: structlog.typing.FilteringBoundLogger) -> None:
        self.config = config
        self.log = log
        self.engine: EngineState | None = None
        self.cycle = 0
        self.ct_reading: CtReading | None = None
        ct = config.agent_only.ct if config.agent_only is not None else None
        self.own_ct = None if ct is None else ModbusCtKit(ModbusBus(ct.bus), ct.kit_config())

    async def read_clamps(self, now: float) -> None:
        """The External CT Clamps on connector #1 (type Site, manual 6.3); clamp n
        measures site phase Ln. A failed read keeps the last sample."""
        if self.own_ct is None:
            return
        try:
            readings = await self.own_ct.read_clamps()
        except DeviceError as err:
            self.log.warning("CT clamps read failed", why=str(err))
            return
        values: list[float | None] = [None, None, None]
        for r in readings:
            values[r.clamp - 1] = r.current_a
        self.ct_reading = CtReading(currents_a=(values[0], values[1], values[2]),
                                    taken_at_s=now)

    def limits(self, now: float, outputs: Mapping[int, ConnectorOutput],
               meters: Mapping[int, MeterReading | None],
               max_current_a: Mapping[int, float],
               lines_seen: Mapping[int, int] | None = None) -> MasterLimits:
        """Run the allocation for this charger's own connectors: their last outputs and
        meter readings, each one's maximum (hard max or OCPP composite limit), and the
        lines its EV has loaded this session (wire.session_lines; 0 or absent: unknown,
        every wired line counts), as a master would get them."""
        settings = self.config.agent_only
        group = settings.group if settings is not None else GroupConfig(
            name=self.config.group, limit_a=self.config.charger_limit_a)
        conns = []
        for c in self.config.connectors:
            out, meter = outputs.get(c.connector_id), meters.get(c.connector_id)
            amps = [*(meter.phase_currents_a if meter else ()), 0.0, 0.0, 0.0][:3]
            seen = (lines_seen or {}).get(c.connector_id, 0)
            conns.append(ConnectorInput(
                ev_lines=None if seen == 0 else (bool(seen & 1), bool(seen & 2), bool(seen & 4)),
                connector_id=c.connector_id, wiring=tuple([*c.wiring, None, None][:3]),  # type: ignore[arg-type]
                max_current_a=max_current_a.get(c.connector_id, c.hard_max_a),
                wants_power=bool(out and out.wants_power),
                measured_a=(max(0.0, amps[0]), max(0.0, amps[1]), max(0.0, amps[2]))))
        # The engine (numpy, ~17 MB) loads at the first cycle: an agent with a master
        # never runs one (master.allocation's docstring).
        from master.allocation import allocate  # noqa: PLC0415

        charger = ChargerInput(charger_id=self.config.charger_id,
                               current_limit_a=self.config.charger_limit_a,
                               connectors=tuple(conns))
        alloc = allocate(Snapshot(now_s=now, group=group, chargers=(charger,),
                                  ct=self.ct_reading), self.engine)
        self.engine = alloc.state
        self.cycle += 1
        return MasterLimits(term=0, cycle=self.cycle, valid_for_s=AGENT_ONLY_LEASE_S,
                            failsafe_current_a=group.failsafe_current_a,
                            currents_a={k[1]: a for k, a in zip(alloc.keys, alloc.currents_a,
                                                                strict=True)})

    def close(self) -> None:
        """Release the clamps' bus (at shutdown)."""
        if self.own_ct is not None:
            self.own_ct.bus.close()
