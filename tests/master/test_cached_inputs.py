"""The master's cycle validates where inputs change, not every cycle (issue 12 §1).

- `ConnectorReport._plausible` and `ConnectorInput._plausible` are fast paths: for any
  value they must agree with the full checks, which alone word the refusal.
- `MemberInputs` keeps a member's engine input while its Hello entries, its online verdict
  and its reports are unchanged, and builds (so validates) a new one when any changes.
- `CycleResult.status` is built on first use from what the cycle captured: later reports
  and disconnections do not leak into an earlier cycle's status.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from master.allocation import ConnectorInput, InvalidInputError, Phase
from master.reports import ConnectorReport, MemberInputs
from tests.master.support import THREE, Rig, conn_report, group, member

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 6.0, 80.0, 80.0001, 500.0, 500.5, 2000.0, 2000.1, 1e9, 1e12,
                     -1e-9, math.nan, math.inf]),
    st.integers(min_value=-5, max_value=3000),
    st.just(True),
)
TRIPLES = st.one_of(st.none(), st.tuples(NUMBERS, NUMBERS, NUMBERS),
                    st.lists(NUMBERS, min_size=0, max_size=4).map(tuple))


VALID_REPORT: dict[str, Any] = {
    "session_energy_wh": 1000.0, "offered_a": 16.0, "max_current_a": 32.0,
    "current_a": (10.0, 0.0, 10.0), "voltage_v": (230.0, 231.0, 229.0),
    "energy_import_wh": 5e6, "phases_in_use": 5, "meter_ok": True}
SCALARS = ("session_energy_wh", "offered_a", "max_current_a", "energy_import_wh")
REPORT_FIELDS = [(name, None) for name in SCALARS] + [
    (name, k) for name in ("current_a", "voltage_v") for k in range(3)]


# Just inside and just outside every bound the checks use, and what is not a number.
EDGES = (0.0, -0.0, -1e-9, 79.999, 80.0, 80.0001, 81.0, 499.9, 500.0, 500.5, 2000.0, 2000.1,
         1e9, 1e9 + 1, 1e12, 1e12 + 1e3, math.nan, math.inf, -math.inf, True, 7, None)


def changed(kw: dict[str, Any], where: tuple[str, int | None], value: Any) -> dict[str, Any]:
    """`kw` with one field (`name`, None) or one line of a triple (`name`, k) set to `value`."""
    name, k = where
    if k is None:
        kw[name] = value
    else:
        line = list(kw[name])
        line[k] = value
        kw[name] = tuple(line)
    return kw


def both_paths_agree(kw: dict[str, Any]) -> None:
    """The fast path's verdict on this report is the full checks' verdict."""
    r = ConnectorReport(connector_id=1, **kw)
    fast = r.problem()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ConnectorReport, "_plausible", lambda self: False)
        assert fast == r.problem()


@pytest.mark.parametrize("value", EDGES, ids=repr)
@pytest.mark.parametrize("where", REPORT_FIELDS, ids=str)
def test_a_report_at_each_bound_gets_the_same_verdict_from_both_paths(
        where: tuple[str, int | None], value: Any) -> None:
    both_paths_agree(changed(dict(VALID_REPORT), where, value))


@settings(max_examples=600, deadline=None)
@given(where=st.sampled_from(REPORT_FIELDS), value=NUMBERS, other=TRIPLES,
       mask=st.integers(min_value=-2, max_value=9), meter_ok=st.booleans(),
       whole=st.booleans())
def test_a_report_is_refused_by_the_fast_path_exactly_when_by_the_full_checks(
        where: tuple[str, int | None], value: Any, other: Any, mask: int, meter_ok: bool,
        whole: bool) -> None:
    """A valid report with one value changed (one line, or a whole triple)."""
    kw = dict(VALID_REPORT, phases_in_use=mask, meter_ok=meter_ok)
    if whole and where[1] is not None:
        kw[where[0]] = other
    else:
        kw = changed(kw, where, value)
    both_paths_agree(kw)


WIRINGS = st.one_of(
    st.tuples(*[st.sampled_from([L1, L2, L3, None])] * 3),
    st.sampled_from([(0, 1, 2), (L1, L2), (L1, L2, L3, None), [L1, L2, L3], ("L1", None, None)]),
)
VALID_INPUT: dict[str, Any] = {"connector_id": 1, "wiring": (L2, L3, L1), "max_current_a": 32.0,
                               "measured_a": (10.0, 0.0, 10.0), "session_energy_wh": 1000.0,
                               "ev_lines": (True, False, True)}


@settings(max_examples=600, deadline=None)
@given(where=st.sampled_from([*VALID_INPUT, "measured_a0", "measured_a1", "measured_a2"]),
       value=st.one_of(NUMBERS, WIRINGS, st.sampled_from([0, 255, 256, 1.5, None]),
                       st.tuples(st.booleans(), st.booleans(), st.booleans()),
                       st.just((True, True))))
def test_an_engine_input_is_refused_by_the_fast_path_exactly_when_by_the_full_checks(
        where: str, value: Any) -> None:
    """A valid input with one value changed."""
    kw = dict(VALID_INPUT)
    if where.startswith("measured_a") and where != "measured_a":
        line = list(kw["measured_a"])
        line[int(where[-1])] = value
        kw["measured_a"] = tuple(line)
    else:
        kw[where] = value

    def outcome() -> str:
        try:
            ConnectorInput(**kw)
        except (InvalidInputError, TypeError, IndexError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    fast = outcome()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ConnectorInput, "_plausible", lambda self: False)
        assert fast == outcome()


def test_unchanged_reports_keep_the_input_and_a_change_builds_a_new_one() -> None:
    m = member("A")
    inputs = MemberInputs()
    reports = {1: conn_report(1), 2: conn_report(2)}
    first = inputs.build(m, reports)
    same_values = {1: conn_report(1), 2: conn_report(2)}  # equal, not the same objects
    assert inputs.build(m, same_values) is first
    moved = inputs.build(m, {1: conn_report(1, current_a=(10.0, 10.0, 10.0)), 2: reports[2]})
    assert moved is not first
    assert moved.connectors[0].measured_a == (10.0, 10.0, 10.0)
    assert moved.connectors[1] is first.connectors[1]  # the idle socket's input is kept
    offline = inputs.build(m, None)
    assert not offline.online and offline.connectors[0].max_current_a == 32.0
    assert inputs.build(m, None) is offline
    rewired = member("A", wiring=(L2, L3, L1))  # a new Hello: its entries are new objects
    assert inputs.build(rewired, None).connectors[0].wiring == (L2, L3, L1)


def test_the_status_shows_the_cycle_it_belongs_to() -> None:
    a, b = member("A"), member("B")
    rig = Rig.start(group(limit_a=64.0), [a, b])
    for _ in range(5):  # past the start-of-term hold
        result = rig.step(reports={"A": a, "B": b})
    rig.control.member_disconnected("B", rig.now)
    rig.now += 1.0
    rig.send_default(a, current_a=(9.0, 9.0, 9.0))
    view = {m.charger_id: m for m in result.status.members}  # built only now
    assert view["B"].online and view["B"].offline_reason == ""
    assert view["A"].connectors[0].measured_a == (0.0, 0.0, 0.0)
    later = {m.charger_id: m for m in rig.control.cycle(rig.now).status.members}
    assert not later["B"].online and later["B"].offline_reason == "stream closed"
    assert later["A"].connectors[0].measured_a == (9.0, 9.0, 9.0)
    assert result.status is result.status  # built once


def test_wiring_typed_as_plain_tuple_is_still_checked() -> None:
    with pytest.raises(InvalidInputError, match="two lines wired to one site phase"):
        ConnectorInput(connector_id=1, wiring=(L1, L1, None), max_current_a=16.0)
    assert ConnectorInput(connector_id=1, wiring=THREE, max_current_a=16.0).row[4:7] == (
        1.0, 1.0, 1.0)
