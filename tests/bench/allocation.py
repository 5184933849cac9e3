"""Allocation time per call, steady state (state carried from the previous cycle).

A mixed car park: a third of the connectors three-phase with rotated wiring, a third
three-phase carrying single-phase EVs, a third single-phase on alternating phases;
2 % of chargers offline; dynamic mode on a grid CT with a moving reading; the limit is
set so that about a third of the EVs must pause (admission, rotation and water-filling
all do real work).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from master.allocation import (
    ChargerInput,
    ConnectorInput,
    CtPlacement,
    CtReading,
    EngineState,
    GroupConfig,
    Mode,
    OfflineStrategy,
    Phase,
    Snapshot,
    allocate,
)

ROTATIONS = [(Phase.L1, Phase.L2, Phase.L3), (Phase.L2, Phase.L3, Phase.L1),
             (Phase.L3, Phase.L1, Phase.L2)]


@dataclass(frozen=True)
class Row:
    connectors: int
    calls: int
    median_ms: float
    p90_ms: float
    target: str


def car_park(n_connectors: int) -> tuple[GroupConfig, tuple[ChargerInput, ...]]:
    chargers = []
    for i in range(n_connectors // 2):
        conns = []
        for k in (1, 2):
            j = 2 * i + k
            kind = j % 3
            if kind == 0:
                wiring, lines = ROTATIONS[i % 3], None
            elif kind == 1:
                wiring, lines = ROTATIONS[(i + 1) % 3], (True, False, False)
            else:
                wiring, lines = (ROTATIONS[i % 3][0], None, None), None
            conns.append(ConnectorInput(
                connector_id=k, wiring=wiring, max_current_a=(16.0, 32.0)[j % 2],
                wants_power=j % 5 != 0, ev_lines=lines, measured_a=(10.0, 10.0, 10.0),
                session_energy_wh=float(j * 37 % 20000), priority=j % 3))
        chargers.append(ChargerInput(charger_id=f"io7-{i:05d}", current_limit_a=32.0,
                                     connectors=tuple(conns), online=i % 50 != 7))
    limit = max(40.0, 6.0 * n_connectors * 0.45)
    group = GroupConfig(name="bench", mode=Mode.DYNAMIC, limit_a=limit,
                        fallback_limit_a=limit / 2, ct_placement=CtPlacement.GRID,
                        offline_strategy=OfflineStrategy.MAXIMISE)
    return group, tuple(chargers)


def measure(n_connectors: int, calls: int) -> Row:
    group, chargers = car_park(n_connectors)
    state: EngineState | None = None
    times = []
    for i in range(calls + 5):
        ct = CtReading(currents_a=(100.0 + i % 7, 90.0, 80.0 + i % 3), taken_at_s=float(i))
        snap = Snapshot(now_s=float(i), group=group, chargers=chargers, ct=ct)
        t0 = time.perf_counter()
        a = allocate(snap, state)
        t1 = time.perf_counter()
        state = a.state
        if i >= 5:  # warm-up
            times.append((t1 - t0) * 1e3)
    times.sort()
    target = "< 1 ms median" if n_connectors == 1000 else ""
    return Row(n_connectors, calls, statistics.median(times), times[int(0.9 * len(times))],
               target)


def run() -> list[Row]:
    return [measure(n, calls) for n, calls in ((10, 2000), (100, 1000), (1000, 300),
                                                (10000, 40))]
