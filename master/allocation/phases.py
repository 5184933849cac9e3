"""Which site phases a connector is counted on: the lines its EV was seen to load.

The agent reports, per connector, the lines its EV has loaded in this session (the
`phases_in_use` mask, kept from plug-in to plug-out through pauses; 0 until the EV has
drawn: agent/wire.py), so a single-phase car that pauses is still counted on its one
line when it waits to resume. The table's `loads` are those lines, or every wired line
while none were seen. Safety first when a car changes its mind:

  - a car seen loading a phase it had not loaded before (a car that switches from one
    phase to three) counts on every wired phase at once, and stays so for
    `PHASE_CONFIRM_S` after the last such change; then on the phases seen;
  - a car that was counted on every wired phase and is then seen on fewer (the first
    draw of the session) is counted on the fewer at once: nothing rose.

The memory is the previous cycle's mask (`lines_mask`, site-phase bits) and when it last
grew (`lines_grew_at_s`), in EngineState; a new session starts from 0 (every wired line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# A car that starts loading a new line is counted on every wired line this long: the
# slowest EVs take ~10 s to settle on a new operating point (architecture.md, time and
# rates), and the agent's mask needs a meter sample or two after that.
PHASE_CONFIRM_S = 15.0
_BITS = np.array([1.0, 2.0, 4.0])


@dataclass(frozen=True, slots=True)
class Accounted:
    loads: BoolArray  # (n, 3): the site phases each connector is counted on this cycle
    mask: FloatArray  # the reported mask in site-phase bits, for next cycle
    grew_at_s: FloatArray


def account(*, now_s: float, seen: BoolArray, wired: BoolArray, online: BoolArray,
            mask: FloatArray, grew_at_s: FloatArray) -> Accounted:
    """The phases each connector counts on, from what was reported (`seen`: the table's
    loads, every wired phase when none were seen) and last cycle's memory. Offline
    connectors keep their memory (their reservation counts every wired line anyway)."""
    now_mask = seen @ _BITS
    before = mask.astype(np.int64)
    new_bits = now_mask.astype(np.int64) & ~before
    grew = online & (before != 0) & (new_bits != 0)
    grew_at = np.where(grew, now_s, grew_at_s)
    doubt = (now_s - grew_at) < PHASE_CONFIRM_S  # NaN compares False
    loads = np.where(doubt[:, None], wired, seen)
    return Accounted(loads=loads, mask=np.where(online, now_mask, mask),
                     grew_at_s=np.where(online, grew_at, grew_at_s))
