"""A snapshot's connectors as numpy columns, with site-phase accounting done once.

Columns are indexed by connector (row i); the three phase columns are the site phases
L1, L2, L3 (`Phase` values). The wiring (phase rotation) was applied when each
`ChargerInput` was built (its `block`), so building the table is one concatenation, and
everything downstream works in site phases only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import numpy as np
import numpy.typing as npt

from master.allocation.model import ConnectorKey, Snapshot

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# Layout of ChargerInput.block: online, charger limit, then ConnectorInput.row.
_ONLINE, _LIMIT = 0, 1
_MAX, _WANTS, _ENERGY, _PRIO = 2, 3, 4, 5
_WIRED, _LOADS, _MEAS, _DRAW = slice(6, 9), slice(9, 12), slice(12, 15), 15


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorTable:
    keys: tuple[ConnectorKey, ...]
    charger_of: IntArray  # row -> charger index in the snapshot
    partner: IntArray  # row of the other connector of the same charger, or -1
    online: BoolArray
    wants: BoolArray
    max_a: FloatArray  # connector hard max
    charger_limit_a: FloatArray  # its charger's Charger Current Limit
    wired: BoolArray  # (n, 3): site phases the connector is wired to
    loads: BoolArray  # (n, 3): site phases its EV loads (all wired ones when unknown)
    measured_site_a: FloatArray  # (n, 3): measured current per site phase
    draw_a: FloatArray  # largest measured current on a phase it loads
    energy_wh: FloatArray
    priority: FloatArray

    @property
    def size(self) -> int:
        return len(self.keys)

    @classmethod
    def build(cls, snap: Snapshot) -> ConnectorTable:
        chargers = snap.chargers
        if not chargers:
            rows = np.zeros((0, _DRAW + 1))
        else:
            rows = np.concatenate([c.block for c in chargers])
        charger_of, partner = _structure(tuple([len(c.keys) for c in chargers]))
        return cls(
            keys=tuple(chain.from_iterable([c.keys for c in chargers])),
            charger_of=charger_of,
            partner=partner,
            online=rows[:, _ONLINE] > 0,
            wants=rows[:, _WANTS] > 0,
            max_a=rows[:, _MAX],
            charger_limit_a=rows[:, _LIMIT],
            wired=rows[:, _WIRED] > 0,
            loads=rows[:, _LOADS] > 0,
            measured_site_a=rows[:, _MEAS],
            draw_a=rows[:, _DRAW],
            energy_wh=rows[:, _ENERGY],
            priority=rows[:, _PRIO],
        )


    def with_loads(self, loads: BoolArray) -> ConnectorTable:
        """This table with `loads` replaced (dataclasses.replace, without its generic
        field walk: once per allocation)."""
        return ConnectorTable(
            keys=self.keys, charger_of=self.charger_of, partner=self.partner,
            online=self.online, wants=self.wants, max_a=self.max_a,
            charger_limit_a=self.charger_limit_a, wired=self.wired, loads=loads,
            measured_site_a=self.measured_site_a, draw_a=self.draw_a,
            energy_wh=self.energy_wh, priority=self.priority)


@lru_cache(maxsize=64)
def _structure(counts: tuple[int, ...]) -> tuple[IntArray, IntArray]:
    """Row -> charger index, and row -> the other row of its charger (or -1), for
    chargers of `counts` connectors in order. Depends on the group's make-up only, which
    changes far less often than the cycle runs: computed once per make-up (read-only)."""
    charger_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    partner = _partners(charger_of)
    charger_of.setflags(write=False)
    partner.setflags(write=False)
    return charger_of, partner


def _partners(charger_of: IntArray) -> IntArray:
    """For rows grouped by charger (at most two each), the other row of the pair or -1."""
    n = len(charger_of)
    partner = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return partner
    same = charger_of[1:] == charger_of[:-1]
    first = np.flatnonzero(same)
    partner[first] = first + 1
    partner[first + 1] = first
    return partner
