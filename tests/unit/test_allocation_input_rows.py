"""The engine's input rows are computed once per input, from a cached plan of its wiring
(issue 15): they must equal the rule they cache, and a bad input must still be refused
with the message of the full checks, whichever path finds it."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from master.allocation import ChargerInput, ConnectorInput, InvalidInputError, Phase

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3


def reference_row(c: ConnectorInput) -> tuple[float, ...]:
    """The row as the engine's rules define it (the code before the cache, verbatim)."""
    wired, meas, loads = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    for line, phase in enumerate(c.wiring):
        if phase is not None:
            wired[phase] = 1.0
            meas[phase] = float(c.measured_a[line])
    for phase in c.loaded_phases():
        loads[phase] = 1.0
    draw = max((meas[p] for p in range(3) if loads[p]), default=0.0)
    return (float(c.max_current_a), float(c.wants_power), float(c.session_energy_wh),
            float(c.priority), *wired, *loads, *meas, draw)


ROWS: dict[str, ConnectorInput] = {
    "three-phase straight, lines unknown": ConnectorInput(
        connector_id=1, wiring=(L1, L2, L3), max_current_a=32.0, wants_power=True,
        measured_a=(10.0, 11.0, 12.0), session_energy_wh=5.0),
    "rotated, EV on L1 only": ConnectorInput(
        connector_id=2, wiring=(L2, L3, L1), max_current_a=16, ev_lines=(True, False, False),
        measured_a=(7.5, 0.2, 0.1)),
    "rotated, EV on L2 and L3 of the connector": ConnectorInput(
        connector_id=2, wiring=(L3, L1, L2), max_current_a=20.0,
        ev_lines=(False, True, True), measured_a=(0.0, 9.0, 9.5)),
    "single-phase socket": ConnectorInput(
        connector_id=1, wiring=(L3, None, None), max_current_a=32.0, measured_a=(6, 0, 0)),
    "two lines wired, EV said to load an unwired line only (loads L1's phase)": ConnectorInput(
        connector_id=1, wiring=(L2, L1, None), max_current_a=32.0,
        ev_lines=(False, False, True), measured_a=(3.0, 4.0, 5.0)),
    "ev_lines given as a list": ConnectorInput(
        connector_id=1, wiring=(L1, L2, L3), max_current_a=32.0,
        ev_lines=[False, True, False], measured_a=(1.0, 2.0, 3.0)),  # type: ignore[arg-type]
    "wiring given as a list": ConnectorInput(
        connector_id=1, wiring=[L1, None, L3], max_current_a=32.0,  # type: ignore[arg-type]
        measured_a=(1.0, 2.0, 3.0)),
    "negative zero and a tie: the first phase's value": ConnectorInput(
        connector_id=1, wiring=(L1, L2, L3), max_current_a=32.0,
        measured_a=(-0.0, 0.0, 0.0), priority=3),
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_connector_row_equals_the_rule(name: str) -> None:
    c = ROWS[name]
    row, ref = c.row, reference_row(c)
    assert row == ref
    assert [math.copysign(1.0, v) for v in row] == [math.copysign(1.0, v) for v in ref]
    assert c.wired_mask == sum(1 << p for p in c.wiring if p is not None)


def test_a_charger_block_and_its_sums_equal_the_rule() -> None:
    a, b = ROWS["three-phase straight, lines unknown"], ROWS["single-phase socket"]
    low = ConnectorInput(connector_id=3, wiring=(L2, None, None), max_current_a=5.0)
    ch = ChargerInput(charger_id="c1", current_limit_a=10.0, connectors=(a, low), online=False)
    assert np.array_equal(ch.block, np.array([(0.0, 10.0, *a.row), (0.0, 10.0, *low.row)]))
    assert ch.keys == (("c1", 1), ("c1", 3))
    assert ch.wired_mask == 0b111
    assert ch.min_draw_a == (6.0, 6.0, 6.0)  # the 5 A socket cannot take 6 A
    two = ChargerInput(charger_id="c2", current_limit_a=8, connectors=(b, ROWS[
        "rotated, EV on L1 only"]))
    assert two.min_draw_a == (6.0, 6.0, 8.0)  # 12 A on L3, capped at the charger's 8 A


BAD: list[tuple[str, Callable[[], object], str]] = [
    ("NaN charger limit", lambda: ChargerInput(
        charger_id="c1", current_limit_a=math.nan, connectors=(ROWS["single-phase socket"],)),
     "c1 current_limit_a=nan must be a finite number in [6.0, 63.0]"),
    ("a bool is not a limit in range", lambda: ChargerInput(
        charger_id="c1", current_limit_a=True, connectors=(ROWS["single-phase socket"],)),
     "current_limit_a=True is outside the allowed range [6.0, 63.0]"),
    ("empty charger id", lambda: ChargerInput(
        charger_id="", current_limit_a=16.0, connectors=(ROWS["single-phase socket"],)),
     "charger_id must not be empty"),
    ("no connectors", lambda: ChargerInput(charger_id="c1", current_limit_a=16.0,
                                           connectors=()), "charger c1 has no connectors"),
    ("duplicate ids in a list", lambda: ChargerInput(
        charger_id="c1", current_limit_a=16.0,
        connectors=[ROWS["single-phase socket"]] * 2),  # type: ignore[arg-type]
     "charger c1: duplicate connector ids [1, 1]"),
    ("infinite measured current", lambda: ConnectorInput(
        connector_id=4, wiring=(L1, L2, L3), max_current_a=16.0,
        measured_a=(0.0, math.inf, 0.0)),
     "connector 4 measured_a[L2]=inf must be a finite number"),
    ("ev_lines naming no line", lambda: ConnectorInput(
        connector_id=4, wiring=(L1, L2, L3), max_current_a=16.0,
        ev_lines=(False, False, False)), "ev_lines must name at least one of 3 lines"),
]


@pytest.mark.parametrize(("make", "says"), [r[1:] for r in BAD], ids=[r[0] for r in BAD])
def test_bad_input_is_refused_with_the_full_checks_message(
        make: Callable[[], object], says: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        make()
    assert says in str(err.value)
