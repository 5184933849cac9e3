"""Invariants of the session phases and the welcome slot (issue 12 §2), for every input.

Cars switch, every cycle, between loading one line, all their wired lines, and "not
seen" (mask 0): the allocation counts each car on every line it may load (every wired
line while unknown, and for PHASE_CONFIRM_S after it was seen on a new line), and on
those lines stays within the budget. Nothing in (0, 6) A; the same inputs and memory
give the same outputs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from master.allocation import (
    MIN_CURRENT_A,
    ConnectorInput,
    EngineState,
    GroupConfig,
    Mode,
    Phase,
    Snapshot,
    allocate,
)
from master.allocation.phases import PHASE_CONFIRM_S

TOL = 1e-6
MASKS = [None, (True, False, False), (True, True, True)]
WIRINGS = [(Phase.L1, Phase.L2, Phase.L3), (Phase.L2, Phase.L3, Phase.L1),
           (Phase.L3, Phase.L1, Phase.L2), (Phase.L2, None, None)]


def _bits(k: ConnectorInput) -> int:
    return sum(1 << int(p) for p in k.loaded_phases())


@st.composite
def days(draw: st.DrawFn) -> tuple[GroupConfig, list[tuple[str, ConnectorInput]],
                                   list[list[int]]]:
    g = GroupConfig(name="phases", mode=Mode.STATIC,
                    limit_a=draw(st.sampled_from([6.0, 13.0, 16.0, 25.0, 40.0])),
                    resume_hysteresis_a=draw(st.sampled_from([0.0, 4.0])),
                    settle_s=draw(st.sampled_from([0.0, 5.0])), ramp_up_a=80.0,
                    min_run_s=draw(st.sampled_from([0.0, 30.0])), min_pause_s=0.0,
                    rotation_period_s=draw(st.sampled_from([60.0, 3600.0])))
    n = draw(st.integers(1, 6))
    cars = [(f"io7-{i}", ConnectorInput(
        connector_id=1, wiring=draw(st.sampled_from(WIRINGS)),  # type: ignore[arg-type]
        max_current_a=draw(st.sampled_from([16.0, 32.0])), wants_power=True))
        for i in range(n)]
    steps = [[draw(st.integers(0, len(MASKS) - 1)) for _ in range(n)]
             for _ in range(draw(st.integers(2, 40)))]
    return g, cars, steps


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(days())
def test_a_car_that_suddenly_loads_every_wired_line_is_counted_on_them_at_once(
    case: tuple[GroupConfig, list[tuple[str, ConnectorInput]], list[list[int]]],
) -> None:
    g, cars, steps = case
    from master.allocation import ChargerInput  # noqa: PLC0415
    state: EngineState | None = None
    last_mask: dict[str, int] = {}
    grew_at: dict[str, float] = {}
    x_prev: dict[str, float] = {}
    for t, choice in enumerate(steps):
        now = float(t)
        members = []
        for (cid, k), m in zip(cars, choice, strict=True):
            lines = MASKS[m]
            # The car draws what it was offered, on the lines it loads now.
            amps = x_prev.get(cid, 0.0)
            measured = tuple(amps if lines is None or lines[j] else 0.0 for j in range(3))
            members.append(ChargerInput(charger_id=cid, current_limit_a=32.0, connectors=(
                replace(k, ev_lines=lines, measured_a=measured),)))  # type: ignore[arg-type]
        snap = Snapshot(now_s=now, group=g, chargers=tuple(members))
        a = allocate(snap, state)
        b = allocate(snap, state)
        assert a.currents_a == b.currents_a and a.reasons == b.reasons
        state = a.state
        per_phase = np.zeros(3)
        for c in members:
            k = c.connectors[0]
            x = a.current_a(c.charger_id, 1)
            assert x == 0.0 or x >= MIN_CURRENT_A - TOL, f"{x} A is in (0, 6)"
            bits, wired = _bits(k), sum(1 << int(p) for p in k.wiring if p is not None)
            before = last_mask.get(c.charger_id, 0)
            if before and bits & ~before:
                grew_at[c.charger_id] = now
            last_mask[c.charger_id] = bits
            doubt = now - grew_at.get(c.charger_id, -1e9) < PHASE_CONFIRM_S
            counted = wired if doubt else bits
            for p in range(3):
                if counted & (1 << p):
                    per_phase[p] += x
        assert (per_phase <= g.limit_a + TOL).all(), f"t={now}: {per_phase} > {g.limit_a}"
        x_prev = {c.charger_id: a.current_a(c.charger_id, 1) for c in members}
