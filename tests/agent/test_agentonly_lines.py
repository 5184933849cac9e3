"""Agent-only mode counts a car on the lines it loaded this session, as a master does
(issue 12 §2): two single-phase cars on the two sockets of one charger, wired with phase
rotation so that they load different site phases, share a 12 A Site Limit without
counting each other's phase."""

from __future__ import annotations

from pathlib import Path

import structlog

from agent.agentonly import LocalBalancer
from agent.config import load_agent_config
from agent.connector import ConnectorOutput
from agent.faults import OcppErrorCode, OcppStatus
from agent.transitions import State
from hw.capabilities import LedColour, LedPattern, MeterReading

CONFIG = """
[charger]
id = "home"
current_limit_a = 32

[connectors.1]
wiring = ["L1", "L2", "L3"]

[connectors.2]
wiring = ["L2", "L3", "L1"]

[agent_only]
site_limit_a = 12
"""


def charging(cid: int) -> ConnectorOutput:
    return ConnectorOutput(
        connector_id=cid, state=State.CHARGING, transition="test", status=OcppStatus.CHARGING,
        error_code=OcppErrorCode.NO_ERROR, vendor_error_code="", faults=frozenset(),
        led=LedPattern(colours=(LedColour.BLUE,)), pwm_a=6.0, contactor_closed=True,
        actions=(), wants_power=True)


def single_phase(amps: float) -> MeterReading:
    """A car loading the connector's line L1 only."""
    return MeterReading(phase_voltages_v=(230.0,) * 3, phase_currents_a=(amps, 0.0, 0.0),
                        phase_powers_w=(230.0 * amps, 0.0, 0.0), total_power_w=230.0 * amps,
                        frequency_hz=50.0, import_energy_wh=1000.0)


def run(tmp_path: Path, lines_seen: dict[int, int] | None) -> dict[int, float]:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG)
    balancer = LocalBalancer(load_agent_config(path), structlog.get_logger())
    outputs = {1: charging(1), 2: charging(2)}
    meters = {1: single_phase(6.0), 2: single_phase(6.0)}
    limits = None
    for t in range(60):  # a minute of cycles: the ramp settles
        limits = balancer.limits(float(t), outputs, meters, {1: 32.0, 2: 32.0}, lines_seen)
    assert limits is not None
    return dict(limits.currents_a)


def test_known_lines_let_each_car_have_its_own_phase(tmp_path: Path) -> None:
    # socket 1's L1 is site L1, socket 2's L1 is site L2: 12 A each
    assert run(tmp_path, {1: 0b001, 2: 0b001}) == {1: 12.0, 2: 12.0}


def test_unknown_lines_count_every_wired_line(tmp_path: Path) -> None:
    # as before the session's lines were passed: each counted on L1-L3, 6 A each
    assert run(tmp_path, None) == {1: 6.0, 2: 6.0}
