"""A simulated io7 board: pilot, contactor, meter, residual-current monitor, LED per
socket, and open-PEN, temperature, tilt and RFID per charger, against the EV model.

It implements the Protocols of `hw.capabilities`, so the agent runs against it unchanged.
Time comes from an injected `clock` (virtual in simulations, monotonic in real-time
runs); every call first brings the plugged-in EV up to `clock()`. The EV sees the pilot as
a real one does: the offered current becomes a duty cycle (`hw.pilot`) and the EV reads
the current back from that duty cycle.

Fault injection (`inject` / `clear`): residual current (AC or DC), open PEN,
over-temperature, tilt, meter silence, welded contactor, diode fault, pilot short (E),
RFID reader failure. A welded contactor keeps supplying the EV after `open_contactor`,
and its feedback contact says so.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from hw.capabilities import (
    RCD_AC_TRIP_MA,
    RCD_DC_TRIP_MA,
    LedPattern,
    LedPatterns,
    MeterReading,
    ResidualCurrentReading,
)
from hw.errors import DeviceTimeoutError
from hw.pilot import (
    PilotReading,
    PilotState,
    current_for_duty_cycle_pct,
    duty_cycle_pct_for_current,
)
from hw.sim.ev import NOMINAL_PHASE_V, EvModel

GRID_FREQUENCY_HZ = 50.0  # product.md ch. 2
AMBIENT_C = 25.0
OVER_TEMPERATURE_C = 90.0  # well above any derating threshold of an outdoor charger
LEAKAGE_MA = 0.5  # a healthy installation's standing leakage


class ConnectorFault(enum.Enum):
    """Faults of one socket."""

    RESIDUAL_CURRENT_AC = "residual current AC"
    RESIDUAL_CURRENT_DC = "residual current DC"
    METER_SILENT = "meter silent"
    CONTACTOR_WELDED = "contactor welded"
    DIODE_FAULT = "diode fault"
    PILOT_SHORT = "pilot shorted to PE"


class ChargerFault(enum.Enum):
    """Faults of the whole charger."""

    OPEN_PEN = "open PEN"
    OVER_TEMPERATURE = "over-temperature"
    TILT = "tilt"
    RFID_FAILURE = "RFID reader failure"


class SimConnector:
    """One simulated socket; implements ControlPilot, Contactor, Meter,
    ResidualCurrentMonitor and Led."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        name: str = "socket 1",
        phase_v: float = NOMINAL_PHASE_V,
    ) -> None:
        self.clock = clock
        self.name = name
        self.phase_v = phase_v
        self.faults: set[ConnectorFault] = set()
        self.led_pattern: LedPattern = LedPatterns.STARTING
        self.duty_pct: float | None = None  # None: no PWM
        self.unavailable = False
        self.coil_on = False
        self._contacts_closed = False
        self._ev: EvModel | None = None
        self._energy_before_wh = 0.0  # from EVs that were unplugged

    # --- the simulation's side ---------------------------------------------------------
    @property
    def ev(self) -> EvModel | None:
        """The EV plugged in, if any."""
        return self._ev

    def plug_in(self, ev: EvModel) -> None:
        """Plug `ev` in now; it sees the current pilot and supply."""
        if self._ev is not None:
            raise RuntimeError(f"{self.name}: an EV is already plugged in")
        now_s = self.clock()
        ev.advance(now_s)
        self._ev = ev
        ev.set_supply(now_s, self._contacts_closed)
        ev.offer(now_s, self._offered_a())

    def unplug(self) -> EvModel | None:
        """Unplug the EV (if any) and return it."""
        ev = self._sync()
        if ev is not None:
            self._energy_before_wh += ev.status.drawn_wh
        self._ev = None
        return ev

    def inject(self, fault: ConnectorFault) -> None:
        """Make `fault` happen from now on."""
        self.faults.add(fault)

    def clear(self, fault: ConnectorFault) -> None:
        """End `fault` (a welded contactor that is cleared has been replaced)."""
        self.faults.discard(fault)
        if fault is ConnectorFault.CONTACTOR_WELDED:
            self._set_contacts(self.coil_on)

    def _sync(self) -> EvModel | None:
        if self._ev is not None:
            self._ev.advance(self.clock())
        return self._ev

    def _offered_a(self) -> float:
        return 0.0 if self.duty_pct is None else current_for_duty_cycle_pct(self.duty_pct)

    def _tell_ev(self) -> None:
        ev = self._sync()
        if ev is not None:
            ev.offer(self.clock(), self._offered_a())

    def _set_contacts(self, closed: bool) -> None:
        if ConnectorFault.CONTACTOR_WELDED in self.faults and self._contacts_closed:
            closed = True  # welded contacts stay closed whatever the coil does
        self._contacts_closed = closed
        ev = self._sync()
        if ev is not None:
            ev.set_supply(self.clock(), closed)

    # --- ControlPilot ------------------------------------------------------------------
    async def offer_current_a(self, current_a: float) -> None:
        """Run the PWM for `current_a`; ValueError if no duty cycle means it."""
        duty = duty_cycle_pct_for_current(current_a)
        if current_a == 0.0:
            await self.stop_offering()
            return
        self.duty_pct = duty
        self.unavailable = False
        self._tell_ev()

    async def stop_offering(self) -> None:
        """Steady +12 V: no PWM."""
        self.duty_pct = None
        self.unavailable = False
        self._tell_ev()

    async def signal_unavailable(self) -> None:
        """Steady -12 V: state F."""
        self.duty_pct = None
        self.unavailable = True
        self._tell_ev()

    async def read_pilot(self) -> PilotReading:
        """What the board's pilot ADC would measure now."""
        ev = self._sync()
        if self.unavailable:
            return PilotReading(high_v=PilotState.F.nominal_v)
        if ConnectorFault.PILOT_SHORT in self.faults:
            high_v = PilotState.E.nominal_v
        elif ev is None:
            high_v = PilotState.A.nominal_v
        elif ev.status.requesting and self.duty_pct is not None:
            high_v = PilotState.C.nominal_v
        else:
            high_v = PilotState.B.nominal_v
        if self.duty_pct is None:
            return PilotReading(high_v=high_v)
        missing_diode = ConnectorFault.DIODE_FAULT in self.faults and ev is not None
        low_v = -high_v if missing_diode else PilotState.F.nominal_v
        return PilotReading(high_v=high_v, low_v=low_v)

    # --- Contactor ---------------------------------------------------------------------
    async def close_contactor(self) -> None:
        """Energise the coil."""
        self.coil_on = True
        self._set_contacts(True)

    async def open_contactor(self) -> None:
        """De-energise the coil (welded contacts stay closed)."""
        self.coil_on = False
        self._set_contacts(False)

    async def feedback_closed(self) -> bool:
        """The auxiliary contact."""
        return self._contacts_closed

    # --- Meter -------------------------------------------------------------------------
    def meter_reading(self) -> MeterReading:
        """What the socket's meter measures now (three-phase; a 1-phase EV uses L1)."""
        ev = self._sync()
        currents = [0.0, 0.0, 0.0]
        drawn_wh = 0.0
        if ev is not None:
            status = ev.status
            currents[: len(status.phase_currents_a)] = status.phase_currents_a
            drawn_wh = status.drawn_wh
        voltages = (self.phase_v,) * 3
        powers = tuple(v * i for v, i in zip(voltages, currents, strict=True))
        return MeterReading(
            phase_voltages_v=voltages,
            phase_currents_a=tuple(currents),
            phase_powers_w=powers,
            total_power_w=sum(powers),
            frequency_hz=GRID_FREQUENCY_HZ,
            import_energy_wh=self._energy_before_wh + drawn_wh,
        )

    async def read_meter(self) -> MeterReading:
        """Poll the meter; DeviceTimeoutError while the meter is silent."""
        if ConnectorFault.METER_SILENT in self.faults:
            raise DeviceTimeoutError(
                device=f"{self.name} meter (simulated)", reason="meter silent (injected)"
            )
        return self.meter_reading()

    # --- ResidualCurrentMonitor, Led ---------------------------------------------------
    async def read_residual_current(self) -> ResidualCurrentReading:
        """Standing leakage, or just over a trip threshold while that fault is injected."""
        ac_ma = LEAKAGE_MA
        dc_ma = 0.0
        if ConnectorFault.RESIDUAL_CURRENT_AC in self.faults:
            ac_ma = RCD_AC_TRIP_MA + 5.0
        if ConnectorFault.RESIDUAL_CURRENT_DC in self.faults:
            dc_ma = RCD_DC_TRIP_MA + 2.0
        return ResidualCurrentReading(ac_ma=ac_ma, dc_ma=dc_ma)

    async def show(self, pattern: LedPattern) -> None:
        """Remember the pattern, for tests to look at."""
        self.led_pattern = pattern


class SimChargerBoard:
    """The parts one io7 shares between its sockets; implements OpenPenDetector,
    TemperatureSensor, TiltSensor and RfidReader."""

    def __init__(self, *, name: str = "io7") -> None:
        self.name = name
        self.faults: set[ChargerFault] = set()
        self.tag: str | None = None
        self._tilt_latched = False

    def inject(self, fault: ChargerFault) -> None:
        """Make `fault` happen from now on (a tilt latches until `clear_tilt`)."""
        self.faults.add(fault)
        if fault is ChargerFault.TILT:
            self._tilt_latched = True

    def clear(self, fault: ChargerFault) -> None:
        """End `fault`."""
        self.faults.discard(fault)

    def present_tag(self, uid: str | None) -> None:
        """Hold a card with `uid` to the reader (None: take it away)."""
        self.tag = None if uid is None else uid.upper()

    async def open_pen_detected(self) -> bool:
        """True while an open PEN is injected."""
        return ChargerFault.OPEN_PEN in self.faults

    async def temperature_c(self) -> float:
        """Ambient, or far too hot while over-temperature is injected."""
        return OVER_TEMPERATURE_C if ChargerFault.OVER_TEMPERATURE in self.faults else AMBIENT_C

    async def tilt_detected(self) -> bool:
        """True once a tilt was injected, until `clear_tilt`."""
        return self._tilt_latched

    async def clear_tilt(self) -> None:
        """Re-arm the tilt sensor."""
        self._tilt_latched = ChargerFault.TILT in self.faults

    async def read_tag(self) -> str | None:
        """The card held to the reader; DeviceTimeoutError while the reader has failed."""
        if ChargerFault.RFID_FAILURE in self.faults:
            raise DeviceTimeoutError(device=f"{self.name} RFID reader", reason="no answer")
        return self.tag
