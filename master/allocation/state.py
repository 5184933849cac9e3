"""The engine's memory between cycles, as columns aligned to connector keys.

The engine keeps no globals: each `allocate` returns an `EngineState` and the caller
hands it back next cycle. Columns rather than one object per connector keep a cycle of
10 000 connectors cheap. A time column holds NaN for "not set".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from master.allocation.model import ConnectorKey

FloatArray = npt.NDArray[np.float64]

# Every column of the memory; all hold floats, NaN meaning "unset" for the *_s ones.
COLUMNS = (
    "current_a",  # the last allocation granted (for an offline charger: its last grant)
    "granted_at_s",  # when current_a was granted: the lease of an offline charger runs from it
    "running_since_s",  # allocation > 0 since (a lender keeps it through its lend)
    "started_at_s",  # allocation > 0 since its latest start (min_run_s guards this one)
    "paused_at_s",  # the engine stopped it while it wanted power (min pause timer)
    "waiting_since_s",  # wants power and has 0 A since (fair admission order)
    "below_since_s",  # draws clearly less than offered since (demand cap timer)
    "cap_a",  # demand cap in force (NaN: none)
    "capped_since_s",  # demand cap in force since (probe timer)
    "hold_a",  # a decrease not yet taken effect: the EV may still draw this much
    "hold_until_s",  # ... until then (architecture: decrease at once, increase gradually)
    "decreased_at_s",  # the last decrease: its measured draw counts until it has followed
    "lines_mask",  # site phases the EV was reported to load last cycle (bits; 0: none yet)
    "lines_grew_at_s",  # it was last seen loading a phase it had not loaded (phases.py)
    "welcomed_at_s",  # its welcome slot began (admitted first since it wants power)
    "borrowed_at_s",  # its welcome slot was made by pausing a lender (welcome.py)
    "lent_at_s",  # paused to lend its room to a welcome slot; back first when it ends
)
# Columns whose "nothing" is 0 rather than NaN.
_ZERO = ("current_a", "hold_a", "lines_mask")


@dataclass(frozen=True, slots=True)
class EngineState:
    """Per-connector memory; `columns[name][i]` belongs to `keys[i]`."""

    keys: tuple[ConnectorKey, ...]
    columns: dict[str, FloatArray]

    @classmethod
    def empty(cls) -> EngineState:
        return cls(keys=(), columns={name: np.zeros(0) for name in COLUMNS})

    def aligned(self, keys: tuple[ConnectorKey, ...]) -> dict[str, FloatArray]:
        """The columns reordered to `keys`; a connector not seen before gets fresh
        values (0 A granted, every timer unset)."""
        if keys == self.keys:
            return {name: col.copy() for name, col in self.columns.items()}
        index = {key: i for i, key in enumerate(self.keys)}
        src = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        known = src >= 0
        out: dict[str, FloatArray] = {}
        for name in COLUMNS:
            fresh = 0.0 if name in _ZERO else np.nan
            col = np.full(len(keys), fresh)
            if len(self.keys):
                col[known] = self.columns[name][src[known]]
            out[name] = col
        return out

    def value(self, key: ConnectorKey, column: str) -> float:
        """One remembered value (NaN when the connector is unknown); for tests and status."""
        try:
            i = self.keys.index(key)
        except ValueError:
            return float("nan")
        return float(self.columns[column][i])
