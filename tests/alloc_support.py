"""Builders for allocation tests: short names for the shapes that recur."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from master.allocation import (
    Allocation,
    ChargerInput,
    ConnectorInput,
    CtReading,
    EngineState,
    GroupConfig,
    Phase,
    Snapshot,
    allocate,
)

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
THREE = (L1, L2, L3)
Wiring = tuple[Phase | None, Phase | None, Phase | None]


def single(phase: Phase) -> Wiring:
    """A single-phase connector whose L1 is wired to site `phase`."""
    return (phase, None, None)


def conn(
    cid: int = 1,
    *,
    wiring: Wiring = THREE,
    max_a: float = 32.0,
    wants: bool = True,
    ev_lines: tuple[bool, bool, bool] | None = None,
    measured: tuple[float, float, float] = (0.0, 0.0, 0.0),
    energy_wh: float = 0.0,
    priority: int = 0,
) -> ConnectorInput:
    return ConnectorInput(
        connector_id=cid, wiring=wiring, max_current_a=max_a, wants_power=wants,
        ev_lines=ev_lines, measured_a=measured, session_energy_wh=energy_wh, priority=priority,
    )


def charger(
    cid: str, *connectors: ConnectorInput, limit_a: float = 32.0, online: bool = True
) -> ChargerInput:
    return ChargerInput(
        charger_id=cid, current_limit_a=limit_a, online=online,
        connectors=connectors or (conn(1),),
    )


def group(**kw: object) -> GroupConfig:
    """A group with quick dynamics (no ramp limit), no demand capping (test EVs draw
    0 A unless told otherwise), 1 A resume hysteresis and 15 min rotation, unless a test
    asks for others."""
    base: dict[str, object] = {"name": "garage", "ramp_up_a": 80.0,
                               "demand_cap_after_s": 86400.0, "idle_cap_after_s": 86400.0,
                               # The worked examples were written for these; the tuned
                               # defaults (README) are tested through io7-sim.
                               "resume_hysteresis_a": 1.0, "rotation_period_s": 900.0}
    base.update(kw)
    return GroupConfig(**base)  # type: ignore[arg-type]


def ct(l1: float | None, l2: float | None = None, l3: float | None = None,
       at: float = 0.0) -> CtReading:
    return CtReading(currents_a=(l1, l2, l3), taken_at_s=at)


def run(
    g: GroupConfig,
    chargers: Sequence[ChargerInput],
    *,
    now: float = 0.0,
    ct_reading: CtReading | None = None,
    state: EngineState | None = None,
) -> Allocation:
    return allocate(Snapshot(now_s=now, group=g, chargers=tuple(chargers), ct=ct_reading), state)


def currents(a: Allocation) -> dict[tuple[str, int], float]:
    return dict(zip(a.keys, a.currents_a, strict=True))


def with_online(c: ChargerInput, online: bool) -> ChargerInput:
    return replace(c, online=online)


def cycles(
    g: GroupConfig,
    chargers: Sequence[ChargerInput],
    start: int,
    end: int,
    state: EngineState | None,
    ct_value: float | None = None,
) -> Allocation:
    """Run one cycle a second from `start` to `end` inclusive, like a master does (a
    gap longer than the lease would let every grant expire). With `ct_value`, each
    cycle gets a fresh CT sample of that value on every phase."""
    a: Allocation | None = None
    for now in range(start, end + 1):
        reading = None if ct_value is None else ct(ct_value, ct_value, ct_value, at=now)
        a = run(g, chargers, now=float(now), ct_reading=reading, state=state)
        state = a.state
    assert a is not None, "empty range"
    return a
