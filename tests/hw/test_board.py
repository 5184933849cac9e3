"""The simulated board against the EV model, in virtual time, with injected faults."""

from __future__ import annotations

import pytest

from hw.capabilities import ChargerHardware, ConnectorHardware, LedPatterns
from hw.errors import DeviceTimeoutError
from hw.pilot import PilotState
from hw.sim.board import ChargerFault, ConnectorFault, SimChargerBoard, SimConnector
from hw.sim.ev import EvModel, EvSpec


class VirtualClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def socket(clock: VirtualClock) -> SimConnector:
    return SimConnector(clock)


async def start_charging(socket: SimConnector, clock: VirtualClock, offered_a: float) -> None:
    socket.plug_in(EvModel(EvSpec(response_delay_s=2.0), soc=0.3, now_s=clock.now_s))
    await socket.close_contactor()
    await socket.offer_current_a(offered_a)
    clock.now_s += 2.0


async def test_pilot_walks_through_a_session(socket: SimConnector, clock: VirtualClock) -> None:
    assert (await socket.read_pilot()).state is PilotState.A
    socket.plug_in(EvModel(EvSpec(), soc=0.3))
    assert (await socket.read_pilot()).state is PilotState.B
    await socket.offer_current_a(16.0)
    reading = await socket.read_pilot()
    assert reading.state is PilotState.C
    assert reading.diode_ok is True
    await socket.signal_unavailable()
    assert (await socket.read_pilot()).state is PilotState.F


async def test_meter_follows_the_ev_after_its_delay(
    socket: SimConnector, clock: VirtualClock
) -> None:
    await start_charging(socket, clock, 16.0)
    reading = await socket.read_meter()
    assert reading.phase_currents_a == (16.0, 16.0, 16.0)
    assert reading.total_power_w == pytest.approx(3 * 230.0 * 16.0)
    clock.now_s += 3600.0
    assert (await socket.read_meter()).import_energy_wh == pytest.approx(11_040.0)


async def test_pause_then_open(socket: SimConnector, clock: VirtualClock) -> None:
    await start_charging(socket, clock, 16.0)
    await socket.stop_offering()
    assert (await socket.read_pilot()).state is PilotState.B  # no PWM: B
    assert (await socket.read_meter()).phase_currents_a[0] == 16.0  # EV has not reacted yet
    clock.now_s += 2.0
    assert (await socket.read_meter()).phase_currents_a[0] == 0.0
    await socket.open_contactor()
    assert await socket.feedback_closed() is False


async def test_offer_refuses_what_the_pilot_cannot_say(socket: SimConnector) -> None:
    with pytest.raises(ValueError, match="cannot be offered"):
        await socket.offer_current_a(3.0)


async def test_welded_contactor_keeps_supplying(socket: SimConnector, clock: VirtualClock) -> None:
    await start_charging(socket, clock, 16.0)
    socket.inject(ConnectorFault.CONTACTOR_WELDED)
    await socket.open_contactor()
    assert socket.coil_on is False
    assert await socket.feedback_closed() is True
    assert (await socket.read_meter()).phase_currents_a[0] == 16.0
    socket.clear(ConnectorFault.CONTACTOR_WELDED)
    assert await socket.feedback_closed() is False


async def test_connector_faults(socket: SimConnector, clock: VirtualClock) -> None:
    await start_charging(socket, clock, 16.0)
    assert not (await socket.read_residual_current()).tripped
    socket.inject(ConnectorFault.RESIDUAL_CURRENT_AC)
    assert (await socket.read_residual_current()).tripped
    socket.clear(ConnectorFault.RESIDUAL_CURRENT_AC)
    socket.inject(ConnectorFault.RESIDUAL_CURRENT_DC)
    assert (await socket.read_residual_current()).tripped
    socket.inject(ConnectorFault.DIODE_FAULT)
    assert (await socket.read_pilot()).diode_ok is False
    socket.inject(ConnectorFault.PILOT_SHORT)
    assert (await socket.read_pilot()).state is PilotState.E
    socket.inject(ConnectorFault.METER_SILENT)
    with pytest.raises(DeviceTimeoutError, match="silent"):
        await socket.read_meter()
    socket.clear(ConnectorFault.METER_SILENT)
    assert (await socket.read_meter()).phases == 3


async def test_suspended_ev_when_full(socket: SimConnector, clock: VirtualClock) -> None:
    socket.plug_in(EvModel(EvSpec(battery_wh=2_000.0, response_delay_s=0.0), soc=0.99))
    await socket.close_contactor()
    await socket.offer_current_a(16.0)
    clock.now_s += 3600.0
    assert (await socket.read_pilot()).state is PilotState.B
    assert (await socket.read_meter()).phase_currents_a == (0.0, 0.0, 0.0)
    ev = socket.unplug()
    assert ev is not None and ev.status.suspended_ev
    assert (await socket.read_meter()).import_energy_wh == pytest.approx(ev.status.drawn_wh)


async def test_charger_faults_and_composition(clock: VirtualClock) -> None:
    board = SimChargerBoard()
    sockets = [SimConnector(clock, name=f"socket {n}") for n in (1, 2)]
    charger = ChargerHardware(
        connectors=tuple(
            ConnectorHardware(pilot=s, contactor=s, meter=s, residual_current=s, led=s)
            for s in sockets
        ),
        open_pen=board,
        temperature=board,
        tilt=board,
        rfid=board,
    )
    assert not await charger.open_pen.open_pen_detected()
    board.inject(ChargerFault.OPEN_PEN)
    assert await charger.open_pen.open_pen_detected()
    board.inject(ChargerFault.OVER_TEMPERATURE)
    assert await charger.temperature.temperature_c() > 80.0
    board.inject(ChargerFault.TILT)
    board.clear(ChargerFault.TILT)
    assert await charger.tilt.tilt_detected()  # latched
    await charger.tilt.clear_tilt()
    assert not await charger.tilt.tilt_detected()
    board.present_tag("04a1b2c3")
    assert await charger.rfid.read_tag() == "04A1B2C3"
    board.inject(ChargerFault.RFID_FAILURE)
    with pytest.raises(DeviceTimeoutError):
        await charger.rfid.read_tag()
    await charger.connectors[1].led.show(LedPatterns.CHARGING)
    assert sockets[1].led_pattern == LedPatterns.CHARGING
    with pytest.raises(ValueError, match="1 or 2"):
        ChargerHardware(connectors=(), open_pen=board, temperature=board, tilt=board, rfid=board)
