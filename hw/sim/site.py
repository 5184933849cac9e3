"""A building's own load on the grid connection over a day: pure, in virtual time.

`SiteModel.phase_currents_a(time_s)` is a function of the time of day only (seconds since
midnight; later days repeat), so a simulation can ask for any instant in any order and a
whole day costs nothing. What the Sense CT kit would read is this plus the chargers' draw.

1. A profile gives the load as a fraction of `peak_a` for each hour (office, residential),
   interpolated linearly between hour marks; `step` is `base_a` until `step_at_s`, then
   `base_a + step_a` (the test case for a sudden load: a lift, a heat pump).
2. Phases differ by fixed factors (`phase_factors`): real buildings are never balanced.
3. Optional solar: a half-sine per phase between sunrise and sunset peaking at
   `solar_peak_a`, subtracted from the load, so readings go negative when exporting.
4. Optional noise, +-`noise_a` per phase, from a hash of (seed, minute, phase):
   deterministic for a seed, and the same value whenever the same instant is asked for.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_HOUR = 3_600.0
SECONDS_PER_MINUTE = 60.0

# Fraction of the peak per hour 00..23, shaped after typical load curves (the Elexon
# profile classes for domestic and non-domestic customers), rounded to keep them readable.
_OFFICE = (
    0.15, 0.15, 0.15, 0.15, 0.15, 0.18, 0.25, 0.50, 0.85, 0.95, 1.00, 1.00,
    0.90, 0.95, 1.00, 0.95, 0.85, 0.60, 0.35, 0.25, 0.20, 0.18, 0.15, 0.15,
)  # fmt: skip
_RESIDENTIAL = (
    0.25, 0.20, 0.18, 0.18, 0.18, 0.22, 0.40, 0.60, 0.55, 0.40, 0.35, 0.35,
    0.40, 0.35, 0.33, 0.35, 0.45, 0.75, 1.00, 0.95, 0.85, 0.70, 0.50, 0.35,
)  # fmt: skip


class SiteProfile(enum.Enum):
    """The shape of the building's load over a day."""

    OFFICE = "office"
    RESIDENTIAL = "residential"
    STEP = "step"


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteSpec:
    """A building: its load shape and size, its solar array, its noise."""

    profile: SiteProfile = SiteProfile.OFFICE
    peak_a: float = 40.0  # per phase at the profile's peak hour
    base_a: float = 5.0  # the step profile's load before the step
    step_a: float = 30.0  # what the step adds
    step_at_s: float = 12 * SECONDS_PER_HOUR
    phase_factors: tuple[float, float, float] = (1.0, 0.85, 0.7)
    solar_peak_a: float = 0.0  # per phase at solar noon; 0 = no solar
    sunrise_s: float = 6 * SECONDS_PER_HOUR
    sunset_s: float = 20 * SECONDS_PER_HOUR
    noise_a: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("peak_a", "base_a", "step_a", "solar_peak_a", "noise_a"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f"{name} must be a finite value >= 0, got {value}")
        if len(self.phase_factors) != 3 or any(f < 0.0 for f in self.phase_factors):
            raise ValueError("phase_factors needs three non-negative factors")
        if not 0.0 <= self.step_at_s < SECONDS_PER_DAY:
            raise ValueError("step_at_s must be a time of day (0..86400 s)")
        if not 0.0 <= self.sunrise_s < self.sunset_s <= SECONDS_PER_DAY:
            raise ValueError("sunrise must come before sunset, within the day")


def _unit_noise(seed: int, minute: int, phase: int) -> float:
    """A deterministic value in [-1, 1) from (seed, minute, phase): splitmix64."""
    x = (seed * 0x9E3779B97F4A7C15 + minute * 0xBF58476D1CE4E5B9 + phase) & (2**64 - 1)
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    return (x / 2**64) * 2.0 - 1.0


class SiteModel:
    """The building's load per phase as a function of the time of day."""

    def __init__(self, spec: SiteSpec) -> None:
        self.spec = spec

    def load_a(self, time_s: float) -> float:
        """The building's load per phase (before phase factors, solar and noise), in A."""
        spec = self.spec
        t = time_s % SECONDS_PER_DAY
        if spec.profile is SiteProfile.STEP:
            return spec.base_a + (spec.step_a if t >= spec.step_at_s else 0.0)
        table = _OFFICE if spec.profile is SiteProfile.OFFICE else _RESIDENTIAL
        hour, within = divmod(t / SECONDS_PER_HOUR, 1.0)
        this, following = table[int(hour)], table[(int(hour) + 1) % 24]
        return spec.peak_a * (this + (following - this) * within)

    def solar_a(self, time_s: float) -> float:
        """What the solar array exports per phase, in A (>= 0)."""
        spec = self.spec
        t = time_s % SECONDS_PER_DAY
        if spec.solar_peak_a == 0.0 or not spec.sunrise_s < t < spec.sunset_s:
            return 0.0
        return spec.solar_peak_a * math.sin(
            math.pi * (t - spec.sunrise_s) / (spec.sunset_s - spec.sunrise_s)
        )

    def phase_currents_a(self, time_s: float) -> tuple[float, float, float]:
        """Net current per phase at `time_s`: load - solar (+ noise); negative = export."""
        spec = self.spec
        load_a = self.load_a(time_s)
        solar_a = self.solar_a(time_s)
        minute = int(time_s // SECONDS_PER_MINUTE)
        currents = []
        for phase, factor in enumerate(spec.phase_factors):
            noise_a = spec.noise_a * _unit_noise(spec.seed, minute, phase)
            currents.append(max(0.0, load_a * factor + noise_a) - solar_a)
        return (currents[0], currents[1], currents[2])
