"""The live page's last 24 hours: a ring buffer of 10 s samples. Pure: no clock, no I/O.

io7d feeds it the group's status whenever it has one (`record(now_unix_s, ...)`, as often
as it likes); the buffer keeps one sample per 10 s slot, the last value seen in that slot.
Rules:
1. Memory is bounded: SLOTS slots per series, at most MAX_CONNECTORS connector series
   (the one seen longest ago is dropped for a new one), so a day of feeding costs what an
   hour does.
2. A slot nobody fed (io7d stopped, this member did not lead) stays empty: the chart shows
   a gap, never an invented value.
3. Time is wall-clock Unix seconds, passed in: the chart's x axis is the time of day. A
   clock stepped back only ever writes into its own slot's place; samples older than
   24 h behind the newest slot are never returned.
4. `query(points)` returns the day from its first sample (a daemon up for an hour shows
   that hour, not 23 h of nothing), thinned to at most `points` per series for the
   browser: per bucket the highest current and the lowest limit, so a peak or a dip is
   never smoothed away. Its work is bounded: at most MAX_VALUES values per answer
   (fewer points when there are many series), thinned by numpy over the float32 columns
   in place (a Python walk of every slot took 3.4 s for 32 chargers: review), so the
   route runs on io7d's loop, the sampler's thread, and never reads a half-written slot.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

INTERVAL_S = 10  # the sampling period of the 24 h chart
SLOTS = 24 * 3600 // INTERVAL_S  # 8640: one day
MAX_CONNECTORS = 64  # a group of 32 io7 Doubles; scenario C has 5 chargers per phase
NAN = math.nan
PHASE_SERIES = ("limit_a", "ct_a", "drawn_a", "allocated_a")
CONNECTOR_SERIES = ("offer_a", "draw_a")
# rule 4: 140 series (3 phases, 64 connectors) x 1 428 points; ~1.5 MB of JSON
MAX_VALUES = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PhasePoint:
    """One site phase now: its limit in force, the CT reading (None: no clamp or static
    mode), what the group's chargers draw on it and what the master allocated, amperes."""

    limit_a: float
    ct_a: float | None
    drawn_a: float
    allocated_a: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorPoint:
    """One connector now: what its pilot offers and its highest measured line current
    (None: not measured), amperes."""

    offer_a: float
    draw_a: float | None


def _column() -> array[float]:
    """One series: float32 (35 kB a day; amperes need no more than 0.01 A), NaN = empty."""
    return array("f", [NAN]) * SLOTS


class History:
    """Per phase limit/CT/drawn/allocated and per connector offer/draw, one value per
    INTERVAL_S slot over the last SLOTS slots."""

    def __init__(self) -> None:
        self._slot_of = array("q", [-1]) * SLOTS  # which absolute slot each index holds
        self._newest = -1
        self._oldest = -1  # the first slot ever recorded (rule 4)
        self._phases: dict[str, dict[str, array[float]]] = {}
        self._connectors: dict[str, dict[str, array[float]]] = {}
        self._seen: dict[str, int] = {}  # connector key -> newest slot it was fed in

    def record(self, now_unix_s: float, phases: Mapping[str, PhasePoint],
               connectors: Mapping[str, ConnectorPoint]) -> None:
        """Keep these values as the sample of `now_unix_s`'s slot (the last call in a
        slot wins). A NaN or infinite `now_unix_s` is ignored."""
        if not math.isfinite(now_unix_s) or now_unix_s < 0:
            return
        slot = int(now_unix_s // INTERVAL_S)
        if slot <= self._newest - SLOTS:
            return  # rule 3: older than the day kept
        i = slot % SLOTS
        if self._slot_of[i] != slot:  # a new slot: clear what the index held a day ago
            self._slot_of[i] = slot
            for table in (*self._phases.values(), *self._connectors.values()):
                for col in table.values():
                    col[i] = NAN
        self._newest = max(self._newest, slot)
        self._oldest = slot if self._oldest < 0 else min(self._oldest, slot)
        for name, p in phases.items():
            cols = self._phases.setdefault(name, {s: _column() for s in PHASE_SERIES})
            cols["limit_a"][i] = p.limit_a
            cols["ct_a"][i] = NAN if p.ct_a is None else p.ct_a
            cols["drawn_a"][i] = p.drawn_a
            cols["allocated_a"][i] = p.allocated_a
        for key, c in connectors.items():
            if key not in self._connectors:
                if len(self._connectors) >= MAX_CONNECTORS:  # rule 1
                    oldest = min(self._seen, key=lambda k: self._seen[k])
                    del self._connectors[oldest], self._seen[oldest]
                self._connectors[key] = {s: _column() for s in CONNECTOR_SERIES}
            self._seen[key] = max(self._seen.get(key, -1), slot)
            self._connectors[key]["offer_a"][i] = c.offer_a
            self._connectors[key]["draw_a"][i] = NAN if c.draw_a is None else c.draw_a

    def query(self, points: int = SLOTS) -> dict[str, object]:
        """The day as JSON-ready data: `t` (Unix s of each point's first slot), `phases`
        {name: {series: [A or None]}}, `connectors` {"charger/connector": {...}}, with at
        most `points` (>= 1) points per series, from the first sample kept (rule 4).
        Empty lists before any record."""
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        if self._newest < 0:
            return {"interval_s": INTERVAL_S, "t": [], "phases": {}, "connectors": {}}
        first = max(self._newest - SLOTS + 1, self._oldest)
        series = 4 * len(self._phases) + 2 * len(self._connectors)
        points = max(1, min(points, MAX_VALUES // max(1, series)))  # rule 4's bound
        step = -(-(self._newest + 1 - first) // points)  # ceil: buckets of `step` slots
        starts = range(first, self._newest + 1, step)
        absolute = np.arange(first, self._newest + 1, dtype=np.int64)
        index = absolute % SLOTS
        empty = np.frombuffer(self._slot_of, dtype=np.int64)[index] != absolute  # rule 2
        pad = len(starts) * step - len(absolute)

        def thin(col: array[float], low: bool) -> list[float | None]:
            vals = np.frombuffer(col, dtype=np.float32)[index].astype(np.float64)
            vals[empty] = np.nan
            buckets = np.pad(vals, (0, pad), constant_values=np.nan).reshape(-1, step)
            picked: npt.NDArray[np.float64] = (np.fmin if low else np.fmax).reduce(
                buckets, axis=1)  # a NaN is skipped; all NaN: NaN
            out: list[float | None] = np.round(picked, 2).tolist()
            for i in np.flatnonzero(np.isnan(picked)).tolist():
                out[i] = None  # rule 2: a gap, not a value
            return out

        return {
            "interval_s": INTERVAL_S * step,
            "t": [s * INTERVAL_S for s in starts],
            "phases": {name: {s: thin(col, s == "limit_a") for s, col in cols.items()}
                       for name, cols in sorted(self._phases.items())},
            "connectors": {key: {s: thin(col, False) for s, col in cols.items()}
                           for key, cols in sorted(self._connectors.items())},
        }
