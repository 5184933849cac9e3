"""Who plugs EVs into the simulated board: the driver of a simulated charger's day.

Only used with `[board] kind = "sim"`. Modes (`[sim] evs`):
- `plugged`: one EV per socket from the first step on (tests, demos that must be steady);
- `random`: EVs arrive after an idle time and leave after a stay, drawn from a seeded
  generator (a live car park for `make run`);
- `none`: sockets stay empty.
Real time here: the agent runs on the monotonic clock; the EV models integrate to it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from hw.sim.board import SimConnector
from hw.sim.ev import EvModel, EvSpec

# A few cars of the kinds a car park sees (onboard charger per phase, battery).
EV_KINDS = (
    EvSpec(phases=3, onboard_max_a=16.0, battery_wh=60_000.0, response_delay_s=1.0),
    EvSpec(phases=3, onboard_max_a=32.0, battery_wh=77_000.0, response_delay_s=2.0),
    EvSpec(phases=1, onboard_max_a=32.0, battery_wh=40_000.0, response_delay_s=3.0),
    EvSpec(phases=1, onboard_max_a=16.0, battery_wh=30_000.0, response_delay_s=1.0),
)
IDLE_S = (5.0, 40.0)  # random mode: a socket stays empty this long
STAY_S = (60.0, 300.0)  # ... and an EV stays this long


class EvDriver:
    """Plugs EVs in and out of `sockets` as its mode says."""

    def __init__(self, sockets: Mapping[int, SimConnector], *, mode: str, seed: int,
                 clock: Callable[[], float]) -> None:
        if mode not in ("random", "plugged", "none"):
            raise ValueError(f"unknown EV mode {mode!r}: random, plugged or none")
        self.sockets = sockets
        self.mode = mode
        self.rng = random.Random(seed)
        now = clock()
        self.next_at = {cid: now + (0.0 if mode == "plugged" else self.rng.uniform(*IDLE_S))
                        for cid in sockets}

    def step(self, now_s: float) -> None:
        if self.mode == "none":
            return
        for cid, sock in self.sockets.items():
            if now_s < self.next_at[cid]:
                continue
            if sock.ev is None:
                spec = EV_KINDS[0] if self.mode == "plugged" else self.rng.choice(EV_KINDS)
                soc = 0.3 if self.mode == "plugged" else self.rng.uniform(0.1, 0.7)
                sock.plug_in(EvModel(spec, soc=soc, now_s=now_s))
                self.next_at[cid] = (float("inf") if self.mode == "plugged"
                                     else now_s + self.rng.uniform(*STAY_S))
            else:
                sock.unplug()
                self.next_at[cid] = now_s + self.rng.uniform(*IDLE_S)
