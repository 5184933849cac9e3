"""An electric vehicle as the charger sees it: pure, in virtual time, no clocks, no sleeps.

Theory of operation:
1. The EV reads the pilot: `offer(now_s, current_a)` records what the EVSE offers (0 = no
   PWM). The EV follows a change `response_delay_s` later (IEC 61851-1 lets it take up to
   ~5 s; some cars take ~10 s); until then it keeps drawing against the old offer.
2. It draws, per phase, min(offer it follows, its onboard-charger maximum, the taper
   limit), and nothing below 6 A offered, nor while the supply (contactor) is off: losing
   the supply stops the draw at once, no delay.
3. Taper: above `taper_start_soc` the current falls linearly with state of charge to
   `taper_end_a` at 100 % (the constant-voltage phase of a Li-ion charge).
4. Energy: what it draws from the grid is V x I x phases (power factor 1); the battery
   stores `charge_efficiency` of it. When the battery is full, or reaches the driver's
   charge limit `target_soc` (most cars let the driver stop at e.g. 80 %), it stops
   drawing and stops asking (pilot B): the connector reports SuspendedEV.
`advance(to_s)` integrates in steps of at most `max_step_s`, cut at every response-delay
boundary and at the instant the battery becomes full, so energy is conserved exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hw.pilot import MAX_CURRENT_A, MIN_CURRENT_A, PilotState

NOMINAL_PHASE_V = 230.0  # product.md ch. 2: 230-400 V AC supply
MAX_RESPONSE_DELAY_S = 15.0  # beyond the ~10 s of the slowest cars (architecture.md)
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EvSpec:
    """A car model: what it can draw and how it reacts."""

    phases: int = 3
    onboard_max_a: float = 16.0  # per phase; a 11 kW onboard charger: 3 x 16 A
    battery_wh: float = 60_000.0
    taper_start_soc: float = 0.8
    taper_end_a: float = 2.0  # draw per phase just before full
    response_delay_s: float = 2.0
    charge_efficiency: float = 0.9  # grid to battery, typical of onboard chargers
    phase_v: float = NOMINAL_PHASE_V
    max_step_s: float = 10.0  # integration step in the taper, small enough for 0.1 % SoC
    target_soc: float = 1.0  # the driver's charge limit: stops asking there

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise ValueError(f"an EV charges on 1 or 3 phases, got {self.phases}")
        if not MIN_CURRENT_A <= self.onboard_max_a <= MAX_CURRENT_A:
            raise ValueError(f"onboard maximum {self.onboard_max_a} A is not within 6-80 A")
        if not self.battery_wh > 0.0:
            raise ValueError("battery capacity must be positive")
        if not 0.0 < self.taper_start_soc < 1.0:
            raise ValueError("taper must start strictly between 0 and 100 % SoC")
        if not 0.0 < self.taper_end_a <= self.onboard_max_a:
            raise ValueError("taper end current must be within (0, onboard maximum]")
        if not 0.0 <= self.response_delay_s <= MAX_RESPONSE_DELAY_S:
            raise ValueError(f"response delay must be within 0-{MAX_RESPONSE_DELAY_S} s")
        if not 0.0 < self.charge_efficiency <= 1.0:
            raise ValueError("charge efficiency must be within (0, 1]")
        if not 0.0 < self.target_soc <= 1.0:
            raise ValueError(f"target SoC must be within (0, 1], got {self.target_soc}")
        if not self.phase_v > 0.0 or not self.max_step_s > 0.0:
            raise ValueError("phase voltage and integration step must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class EvStatus:
    """The EV at one instant."""

    now_s: float
    phase_currents_a: tuple[float, ...]  # one per phase the EV uses
    soc: float  # 0..1
    drawn_wh: float  # from the grid since the model started
    stored_wh: float  # into the battery since the model started
    requesting: bool  # pilot C: the EV wants to charge
    full: bool

    @property
    def pilot_state(self) -> PilotState:
        """What the EV's resistors make of the pilot: C asks for energy, B does not."""
        return PilotState.C if self.requesting else PilotState.B

    @property
    def suspended_ev(self) -> bool:
        """True when the EV stopped on its own (full): OCPP SuspendedEV."""
        return self.full


class EvModel:
    """One EV plugged into one socket. Deterministic; drive it with `offer` and `advance`."""

    def __init__(self, spec: EvSpec, *, soc: float, now_s: float = 0.0) -> None:
        if not 0.0 <= soc <= 1.0:
            raise ValueError(f"state of charge must be within 0..1, got {soc}")
        self.spec = spec
        self._now_s = now_s
        self._energy_wh = soc * spec.battery_wh  # in the battery
        self._start_wh = self._energy_wh
        self._drawn_wh = 0.0
        self._followed_a = 0.0  # the offer the EV currently follows
        self._pending: list[tuple[float, float]] = []  # (effective at, offer)
        self._supply_on = False
        self._status: EvStatus | None = None  # cached until time or an input moves

    @property
    def now_s(self) -> float:
        """Virtual time the model has reached."""
        return self._now_s

    def _check_time(self, now_s: float) -> None:
        if now_s < self._now_s:
            raise ValueError(f"time runs forward: model at {self._now_s} s, asked {now_s} s")

    def offer(self, now_s: float, current_a: float) -> None:
        """The pilot offers `current_a` from `now_s` on (0 = no PWM); followed after the delay."""
        if not math.isfinite(current_a) or current_a < 0.0:
            raise ValueError(f"offered current must be finite and >= 0, got {current_a}")
        self.advance(now_s)
        self._pending.append((now_s + self.spec.response_delay_s, current_a))
        self._status = None

    def set_supply(self, now_s: float, on: bool) -> None:
        """The contactor closes (`on`) or opens at `now_s`: no supply, no draw, at once."""
        self.advance(now_s)
        self._supply_on = on
        self._status = None

    def _taper_limit_a(self) -> float:
        soc = self._energy_wh / self.spec.battery_wh
        spec = self.spec
        if soc <= spec.taper_start_soc:
            return spec.onboard_max_a
        fraction = (1.0 - soc) / (1.0 - spec.taper_start_soc)
        return spec.taper_end_a + (spec.onboard_max_a - spec.taper_end_a) * fraction

    def _full_wh(self) -> float:
        return self.spec.battery_wh * self.spec.target_soc

    def _full(self) -> bool:
        return self._energy_wh >= self._full_wh()

    def _draw_a(self) -> float:
        if not self._supply_on or self._full() or self._followed_a < MIN_CURRENT_A:
            return 0.0
        return min(self._followed_a, self.spec.onboard_max_a, self._taper_limit_a())

    def advance(self, to_s: float) -> EvStatus:
        """Integrate up to `to_s` (virtual seconds) and return the status there."""
        self._check_time(to_s)
        spec = self.spec
        if self._now_s < to_s or (self._pending and self._pending[0][0] <= self._now_s):
            self._status = None
        while self._now_s < to_s:
            self._apply_due_offers()
            step_end = min(to_s, self._now_s + spec.max_step_s)
            if self._pending:
                step_end = min(step_end, self._pending[0][0])
            draw_a = self._draw_a()
            power_w = draw_a * spec.phase_v * spec.phases
            dt_s = step_end - self._now_s
            if power_w > 0.0:
                room_wh = self._full_wh() - self._energy_wh
                to_full_s = room_wh / (power_w * spec.charge_efficiency) * SECONDS_PER_HOUR
                if to_full_s <= dt_s:  # becomes full inside this step: stop exactly there
                    step_end = self._now_s + to_full_s
                    self._drawn_wh += room_wh / spec.charge_efficiency
                    self._energy_wh = self._full_wh()
                else:
                    drawn_wh = power_w * dt_s / SECONDS_PER_HOUR
                    self._drawn_wh += drawn_wh
                    self._energy_wh += drawn_wh * spec.charge_efficiency
            self._now_s = step_end
        self._apply_due_offers()
        return self.status

    def _apply_due_offers(self) -> None:
        while self._pending and self._pending[0][0] <= self._now_s:
            self._followed_a = self._pending.pop(0)[1]

    @property
    def status(self) -> EvStatus:
        """The EV now."""
        if self._status is not None:
            return self._status
        draw_a = self._draw_a()
        self._status = EvStatus(
            now_s=self._now_s,
            phase_currents_a=(draw_a,) * self.spec.phases,
            soc=self._energy_wh / self.spec.battery_wh,
            drawn_wh=self._drawn_wh,
            stored_wh=self._energy_wh - self._start_wh,
            requesting=not self._full(),
            full=self._full(),
        )
        return self._status
