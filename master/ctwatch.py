"""Frozen CT kit detection: a kit that keeps answering, always with the same values. Pure.

A Sense CT kit whose firmware hangs may go on answering Modbus with its last values: every
read succeeds, so the stale and lost timeouts never fire and the building's load is
trusted as it was. A live clamp never reads the same float32, bit for bit, for a minute
while the current through it changes, so:

 1. A run is a sequence of samples whose clamps are all bit-identical to the run's first
    sample; a sample that differs in any clamp starts a new run.
 2. The kit is frozen when the run has lasted longer than `frozen_after_s` AND, during the
    run, the group's own measured draw on a clamped site phase moved by more than
    `min_draw_change_a` (max - min). A quiet site may read the same for long; a reading
    that ignores the chargers' changing draw cannot be real.
 3. Only with the CT on the grid incomer, where the reading includes the chargers' draw.
    With the CT on the other loads only, the reading need not follow the chargers: never
    frozen.
 4. Frozen is handled as a lost kit (fallback limit, CT status LOST) with a fault text
    saying so; the next sample that differs ends it at once.

No clock: `now_s` (monotonic) comes with every sample, as in `master.control`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from master.allocation import CtPlacement
from master.membership import Wiring

Line3 = tuple[float, float, float]

DEFAULT_FROZEN_AFTER_S = 60.0  # a minute: a live building's float32 reading never repeats
DEFAULT_MIN_DRAW_CHANGE_A = 3.0  # well above meter noise; a car starting or stopping moves >= 6 A


@dataclass(frozen=True, slots=True, kw_only=True)
class FreezeSettings:
    """When identical readings mean a frozen kit (rule 2)."""

    frozen_after_s: float = DEFAULT_FROZEN_AFTER_S
    min_draw_change_a: float = DEFAULT_MIN_DRAW_CHANGE_A

    def __post_init__(self) -> None:
        if not (math.isfinite(self.frozen_after_s) and self.frozen_after_s > 0.0):
            raise ValueError(f"frozen_after_s={self.frozen_after_s!r} must be > 0")
        if not (math.isfinite(self.min_draw_change_a) and self.min_draw_change_a > 0.0):
            raise ValueError(f"min_draw_change_a={self.min_draw_change_a!r} must be > 0")


def site_draw_a(lines: Iterable[tuple[Wiring, Line3]]) -> Line3:
    """The chargers' measured draw per site phase, from (wiring, current per connector
    line) pairs: connector line k adds to the site phase it is wired to."""
    draw = [0.0, 0.0, 0.0]
    for wiring, currents in lines:
        for phase, amps in zip(wiring, currents, strict=True):
            if phase is not None:
                draw[phase] += amps
    return (draw[0], draw[1], draw[2])


def _bits(currents_a: tuple[float | None, ...]) -> tuple[bytes | None, ...]:
    """Bit patterns, so that 0.0 and -0.0 differ as the registers do."""
    return tuple(None if v is None else struct.pack(">d", v) for v in currents_a)


class CtFreezeWatch:
    """Rules 1-4 over the CT samples of one group. Feed every good sample to `sample`."""

    def __init__(self, settings: FreezeSettings | None = None) -> None:
        self.settings = settings or FreezeSettings()
        self._run: tuple[bytes | None, ...] | None = None
        self._since_s = 0.0
        self._low: list[float] = [math.inf] * 3
        self._high: list[float] = [-math.inf] * 3
        self.frozen = False

    def sample(self, currents_a: tuple[float | None, float | None, float | None],
               own_draw_a: Line3, now_s: float, *, placement: CtPlacement) -> str:
        """Take one good sample (None = no clamp on that phase) with the chargers' draw per
        site phase at that time. Returns the fault text while frozen, else ""."""
        bits = _bits(currents_a)
        if bits != self._run:
            self._run, self._since_s = bits, now_s
            self._low, self._high = [math.inf] * 3, [-math.inf] * 3
        for p, amps in enumerate(own_draw_a):
            self._low[p] = min(self._low[p], amps)
            self._high[p] = max(self._high[p], amps)
        clamped = [p for p, v in enumerate(currents_a) if v is not None]
        change_a = max((self._high[p] - self._low[p] for p in clamped), default=0.0)
        lasted_s = now_s - self._since_s
        self.frozen = (placement is CtPlacement.GRID
                       and lasted_s > self.settings.frozen_after_s
                       and change_a > self.settings.min_draw_change_a)
        if not self.frozen:
            return ""
        return (f"CT kit frozen: identical readings for {lasted_s:.0f} s while the chargers' "
                f"draw changed by {change_a:.1f} A; the fallback limit applies until the "
                "readings change: check the kit's power and wiring")
