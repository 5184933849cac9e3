"""The limit applier: terms, leases, fail-safe, the 5 s rule, the bounds, and a property."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.bounds import LinkBounds, Refusal
from agent.errors import PeerError
from agent.limits import (
    InvalidLimitsError,
    LimitApplier,
    MasterLimits,
    OfferDecision,
    OfferSource,
    floor_to_step_da,
    split_fairly,
)


def limits(term: int = 1, cycle: int = 1, valid_for_s: float = 3.0, failsafe_a: float = 0.0,
           **currents: float) -> MasterLimits:
    """Limits for connectors c1=..., c2=... (A)."""
    return MasterLimits(term=term, cycle=cycle, valid_for_s=valid_for_s,
                        failsafe_current_a=failsafe_a,
                        currents_a={int(k[1:]): v for k, v in currents.items()})


def applier(charger_limit_a: float = 32.0, hard_max: float = 32.0, **kw: Any) -> LimitApplier:
    return LimitApplier(connector_ids=(1, 2), charger_limit_a=charger_limit_a,
                        hard_max_a={1: hard_max, 2: hard_max}, **kw)


def view(decisions: Mapping[int, OfferDecision]) -> dict[int, tuple[float, OfferSource]]:
    return {cid: (d.current_a, d.source) for cid, d in decisions.items()}


M, F, CL, HM, LO, HELD, BM = (OfferSource.MASTER, OfferSource.FAILSAFE,
                              OfferSource.CHARGER_LIMIT, OfferSource.HARD_MAX, OfferSource.LOCAL,
                              OfferSource.INCREASE_HELD, OfferSource.BELOW_MINIMUM)


def test_stale_terms_and_cycles_are_ignored() -> None:
    a = applier()
    assert a.on_limits(limits(term=2, cycle=5, c1=16, c2=16), now_s=0.0)
    assert (a.term_applied, a.cycle_applied) == (2, 5)
    assert not a.on_limits(limits(term=1, cycle=9, c1=32, c2=32), now_s=0.1)  # older term
    assert not a.on_limits(limits(term=2, cycle=5, c1=32, c2=32), now_s=0.2)  # same cycle
    assert not a.on_limits(limits(term=2, cycle=4, c1=32, c2=32), now_s=0.3)  # older cycle
    assert view(a.offered(0.5)) == {1: (16.0, M), 2: (16.0, M)}
    assert a.on_limits(limits(term=2, cycle=6, c1=10, c2=10), now_s=1.0)
    assert a.on_limits(limits(term=3, cycle=1, c1=8, c2=8), now_s=1.5)  # new term, cycle 1
    assert (a.term_applied, a.cycle_applied, a.last_seen_term) == (3, 1, 3)
    assert view(a.offered(2.0)) == {1: (8.0, M), 2: (8.0, M)}


def test_a_persisted_term_is_honoured_after_a_restart() -> None:
    a = applier(last_seen_term=4)
    assert (a.term_applied, a.last_seen_term) == (0, 4)
    assert not a.on_limits(limits(term=3, cycle=100, c1=16), now_s=0.0)
    assert a.on_limits(limits(term=4, cycle=1, c1=16), now_s=0.0)


def test_agent_only_mode_feeds_term_zero() -> None:
    a = applier()
    for cycle in range(1, 4):
        assert a.on_limits(limits(term=0, cycle=cycle, c1=16), now_s=float(cycle))
    assert (a.term_applied, a.cycle_applied) == (0, 3)


@pytest.mark.parametrize(("strategy", "failsafe_a"), [("zero", 0.0), ("maximise", 0.0),
                                                      ("minimise", 6.0)])
def test_lease_expiry_falls_back_to_the_failsafe(strategy: str, failsafe_a: float) -> None:
    a = applier()
    a.on_limits(limits(valid_for_s=3.0, failsafe_a=failsafe_a, c1=16, c2=16), now_s=10.0)
    inside = a.offered(12.9)
    assert view(inside) == {1: (16.0, M), 2: (16.0, M)}
    assert inside[1].lease_ok and a.lease_ok(12.9)
    expired = a.offered(13.0)
    assert view(expired) == {1: (failsafe_a, F), 2: (failsafe_a, F)}, strategy
    assert not expired[1].lease_ok and not a.lease_ok(13.0)


def test_no_lease_yet_means_the_initial_failsafe() -> None:
    assert view(applier().offered(0.0)) == {1: (0.0, F), 2: (0.0, F)}
    a = applier(initial_failsafe_a=6.0)
    assert view(a.offered(0.0)) == {1: (6.0, F), 2: (6.0, F)}
    a.set_failsafe_current(0.0)  # from the Welcome
    assert view(a.offered(1.0)) == {1: (0.0, F), 2: (0.0, F)}


def test_minimise_on_a_small_charger_gives_6_a_to_connector_1_only() -> None:
    a = applier(charger_limit_a=10.0)
    a.on_limits(limits(failsafe_a=6.0, c1=5, c2=5), now_s=0.0)
    assert view(a.offered(5.0)) == {1: (6.0, F), 2: (0.0, CL)}


def test_decrease_at_once_increase_at_most_every_5_s() -> None:
    a = applier()
    cycle = iter(range(1, 100))

    def at(now_s: float, amps: float) -> tuple[float, OfferSource]:
        a.on_limits(limits(cycle=next(cycle), c1=amps), now_s)
        return view(a.offered(now_s))[1]

    assert at(0.0, 16) == (16.0, M)  # from 0: allowed at once
    assert at(1.0, 10) == (10.0, M)  # decrease: at once
    assert at(2.0, 16) == (10.0, HELD)  # the 0 s increase was 2 s ago
    assert a.offered(2.0)[1].target_a == 16.0
    assert at(4.9, 20) == (10.0, HELD)
    assert at(5.0, 20) == (20.0, M)
    assert at(6.0, 6) == (6.0, M)
    assert at(7.0, 32) == (6.0, HELD)
    assert at(10.0, 32) == (32.0, M)


def test_first_offer_from_zero_waits_if_it_just_increased() -> None:
    a = applier()
    a.on_limits(limits(cycle=1, c1=16), 0.0)
    a.offered(0.0)
    a.on_limits(limits(cycle=2, c1=0), 1.0)
    assert view(a.offered(1.0))[1] == (0.0, M)
    a.on_limits(limits(cycle=3, valid_for_s=10.0, c1=16), 2.0)
    assert view(a.offered(2.0))[1] == (0.0, HELD)
    assert view(a.offered(5.0))[1] == (16.0, M)


# (name, master A, charger limit A, hard max A, local A or None, expected A, source)
MIN_CASES = [
    ("master binds", 16.0, 32.0, 32.0, None, 16.0, M),
    ("hard max binds", 20.0, 32.0, 16.0, None, 16.0, HM),
    ("local binds", 20.0, 32.0, 32.0, 12.0, 12.0, LO),
    ("charger limit binds", 20.0, 10.0, 32.0, None, 10.0, CL),
    ("tie goes to the master", 16.0, 32.0, 16.0, 16.0, 16.0, M),
    ("rounded down to 0.1 A", 16.37, 32.0, 32.0, None, 16.3, M),
    ("local below 6 A gives 0", 16.0, 32.0, 32.0, 5.9, 0.0, BM),
    ("master below 6 A gives 0", 5.5, 32.0, 32.0, None, 0.0, BM),
    ("master pauses", 0.0, 32.0, 32.0, None, 0.0, M),
    ("local 0 pauses", 16.0, 32.0, 32.0, 0.0, 0.0, LO),
    ("6 A exactly", 6.0, 32.0, 32.0, None, 6.0, M),
]


@pytest.mark.parametrize(("name", "master", "charger", "hard", "local", "expected", "source"),
                         MIN_CASES, ids=[c[0] for c in MIN_CASES])
def test_the_offer_is_the_lowest_limit(name: str, master: float, charger: float, hard: float,
                                       local: float | None, expected: float,
                                       source: OfferSource) -> None:
    a = applier(charger_limit_a=charger, hard_max=hard)
    a.set_local_limit(1, local)
    a.on_limits(limits(c1=master), now_s=0.0)
    assert view(a.offered(0.0))[1] == (expected, source), name


# (name, connector 1 A, connector 2 A, charger limit A, expected 1, expected 2)
SPLIT_CASES = [
    ("fits", 16.0, 16.0, 32.0, (16.0, M), (16.0, M)),
    ("even split", 20.0, 20.0, 32.0, (16.0, CL), (16.0, CL)),
    ("small one keeps its own", 10.0, 30.0, 32.0, (10.0, M), (22.0, CL)),
    ("odd tenth goes to connector 1", 20.0, 20.0, 12.3, (6.2, CL), (6.1, CL)),
    ("no room for two at 6 A", 16.0, 16.0, 11.9, (11.9, CL), (0.0, CL)),
]


@pytest.mark.parametrize(("name", "c1", "c2", "charger", "e1", "e2"), SPLIT_CASES,
                         ids=[c[0] for c in SPLIT_CASES])
def test_the_charger_limit_is_split_fairly(name: str, c1: float, c2: float, charger: float,
                                           e1: tuple[float, OfferSource],
                                           e2: tuple[float, OfferSource]) -> None:
    a = applier(charger_limit_a=charger)
    a.on_limits(limits(c1=c1, c2=c2), now_s=0.0)
    assert view(a.offered(0.0)) == {1: e1, 2: e2}, name


def test_split_fairly_drops_the_highest_id_first() -> None:
    assert split_fairly({1: 100, 2: 100, 3: 100}, 150) == {1: 75, 2: 75, 3: 0}
    assert split_fairly({1: 0, 2: 80}, 70) == {1: 0, 2: 70}
    assert split_fairly({}, 100) == {}


def test_a_connector_the_master_does_not_name_is_paused() -> None:
    a = applier()
    a.on_limits(limits(c1=16), now_s=0.0)
    assert view(a.offered(0.0))[2] == (0.0, M)


def test_limits_for_an_unknown_connector_are_refused_and_change_nothing() -> None:
    a = applier()
    a.on_limits(limits(cycle=1, c1=16), now_s=0.0)
    with pytest.raises(InvalidLimitsError, match=r"connectors \[3\]") as info:
        a.on_limits(limits(cycle=2, c1=32, c3=16), now_s=1.0)
    assert isinstance(info.value, PeerError)
    assert a.cycle_applied == 1
    assert view(a.offered(1.0))[1] == (16.0, M)


@pytest.mark.parametrize(("kw", "match"), [
    ({"failsafe_current_a": 3.0}, "0 or at least 6"),
    ({"valid_for_s": 0.0}, "valid_for_s"),
    ({"term": -1}, "term"),
    ({"currents_a": {1: -2.0}}, "connector 1 current"),
    ({"currents_a": {1: float("inf")}}, "connector 1 current"),
    ({"currents_a": {0: 16.0}}, "start at 1"),
])
def test_master_limits_refuse_impossible_values(kw: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"term": 1, "cycle": 1, "valid_for_s": 3.0,
                            "failsafe_current_a": 0.0, "currents_a": {1: 16.0}}
    with pytest.raises(InvalidLimitsError, match=match):
        MasterLimits(**{**base, **kw})


def test_master_limits_are_immutable() -> None:
    source = {1: 16.0}
    msg = MasterLimits(term=1, cycle=1, valid_for_s=3.0, failsafe_current_a=0.0,
                       currents_a=source)
    source[1] = 32.0
    assert msg.currents_a[1] == 16.0
    with pytest.raises(TypeError):
        msg.currents_a[1] = 32.0  # type: ignore[index]


@pytest.mark.parametrize(("kw", "match"), [
    ({"charger_limit_a": 64.0}, "charger_limit_a"),
    ({"charger_limit_a": 5.0}, "charger_limit_a"),
    ({"hard_max_a": {1: 16.0}}, "hard_max_a"),
    ({"initial_failsafe_a": 4.0}, "initial_failsafe_a"),
    ({"connector_ids": (1, 1)}, "distinct"),
])
def test_the_applier_refuses_impossible_settings(kw: dict[str, Any], match: str) -> None:
    base: dict[str, Any] = {"connector_ids": (1, 2), "charger_limit_a": 32.0,
                            "hard_max_a": {1: 32.0, 2: 32.0}}
    with pytest.raises(ValueError, match=match):
        LimitApplier(**{**base, **kw})


def test_unknown_connector_and_backwards_time_are_refused() -> None:
    a = applier()
    with pytest.raises(ValueError, match="unknown connector 3"):
        a.set_local_limit(3, 10.0)
    with pytest.raises(ValueError, match="unknown connector 3"):
        a.set_hard_max(3, 10.0)
    a.offered(5.0)
    with pytest.raises(ValueError, match="backwards"):
        a.offered(4.0)


@pytest.mark.parametrize(("amps", "steps"), [(0.0, 0), (6.0, 60), (2.3, 23), (16.37, 163),
                                             (6.29999999, 62), (0.05, 0), (-1.0, 0)])
def test_floor_to_step(amps: float, steps: int) -> None:
    assert floor_to_step_da(amps) == steps


# -- property: whatever happens, no bound is ever exceeded -----------------------------------

amps = st.one_of(st.just(0.0), st.just(6.0), st.floats(min_value=0.0, max_value=80.0))
op = st.one_of(
    st.tuples(st.just("limits"), st.integers(0, 3), amps, amps, st.sampled_from([0.0, 6.0]),
              st.floats(min_value=0.5, max_value=10.0)),
    st.tuples(st.just("local"), st.sampled_from([1, 2]), st.one_of(st.none(), amps)),
    st.tuples(st.just("hard"), st.sampled_from([1, 2]), amps),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=8.0)),
)


@settings(max_examples=300, deadline=None)
@given(charger_limit=st.floats(min_value=6.0, max_value=63.0),
       ops=st.lists(op, min_size=1, max_size=40))
def test_offers_never_exceed_a_bound_and_never_fall_in_0_6(
        charger_limit: float, ops: list[tuple[Any, ...]]) -> None:
    a = applier(charger_limit_a=charger_limit)
    now, cycle = 0.0, 0
    master: dict[int, float] = {1: 0.0, 2: 0.0}
    lease_until, failsafe = -1.0, 0.0
    local: dict[int, float | None] = {1: None, 2: None}
    hard = {1: 32.0, 2: 32.0}
    last_offer = {1: 0.0, 2: 0.0}
    last_increase: dict[int, float] = {}
    for item in ops:
        kind = item[0]
        if kind == "limits":
            _, term, c1, c2, fs, valid = item
            cycle += 1
            if a.on_limits(limits(term=term, cycle=cycle, valid_for_s=valid, failsafe_a=fs,
                                  c1=c1, c2=c2), now):
                master, lease_until, failsafe = {1: c1, 2: c2}, now + valid, fs
        elif kind == "local":
            a.set_local_limit(item[1], item[2])
            local[item[1]] = item[2]
        elif kind == "hard":
            a.set_hard_max(item[1], item[2])
            hard[item[1]] = item[2]
        else:
            now += item[1]
        decisions = a.offered(now)
        base = master if now < lease_until else {1: failsafe, 2: failsafe}
        total = 0.0
        for cid, d in decisions.items():
            offer = d.current_a
            assert offer == 0.0 or offer >= 6.0
            bounds = [base[cid], charger_limit, hard[cid]]
            if local[cid] is not None:
                bounds.append(local[cid])  # type: ignore[arg-type]
            assert offer <= min(bounds), (cid, d, bounds)
            assert d.lease_ok == (now < lease_until)
            if offer > last_offer[cid]:
                assert now - last_increase.get(cid, -1e9) >= 5.0
                last_increase[cid] = now
            last_offer[cid] = offer
            total += offer
        assert total <= charger_limit + 1e-9


# -- bounds: what this agent accepts from any master (issue 10) ------------------------------

BOUNDED = LinkBounds(max_failsafe_a=6.0, min_lease_s=1.0, max_lease_s=10.0)

# (name, fail-safe A, lease s, field refused or None)
WELCOME_CASES = [
    ("usual Minimise", 6.0, 3.0, None),
    ("usual Zero", 0.0, 3.0, None),
    ("fail-safe 80 A", 80.0, 3.0, "failsafe_current_a"),
    ("fail-safe above the bound", 16.0, 3.0, "failsafe_current_a"),
    ("fail-safe in (0, 6)", 3.0, 3.0, "failsafe_current_a"),
    ("lease an hour", 6.0, 3600.0, "lease_s"),
    ("lease too short", 6.0, 0.2, "lease_s"),
    ("lease at the bounds", 6.0, 10.0, None),
]


@pytest.mark.parametrize(("name", "failsafe_a", "lease_s", "refused"), WELCOME_CASES,
                         ids=[c[0] for c in WELCOME_CASES])
def test_a_welcome_outside_the_bounds_is_refused_and_changes_nothing(
        name: str, failsafe_a: float, lease_s: float, refused: str | None) -> None:
    a = applier(initial_failsafe_a=6.0, bounds=BOUNDED, last_seen_term=2)
    accepted = a.on_welcome(term=3, failsafe_a=failsafe_a, lease_s=lease_s)
    assert accepted == (refused is None), name
    if refused is None:
        assert (a.failsafe_current_a, a.last_seen_term, a.refused_reason) == (failsafe_a, 3, "")
        return
    assert a.refusal is not None and a.refusal.field == refused
    assert (a.failsafe_current_a, a.last_seen_term) == (6.0, 2)  # nothing changed
    assert view(a.offered(0.0)) == {1: (6.0, F), 2: (6.0, F)}
    assert a.refused_reason.startswith(("fail-safe", "lease"))
    assert "this agent's bound" in a.refused_reason


def test_a_welcome_from_an_older_term_is_refused() -> None:
    a = applier(bounds=BOUNDED, last_seen_term=5)
    assert not a.on_welcome(term=4, failsafe_a=6.0, lease_s=3.0)
    assert a.refused_reason == "term 4 is older than term 5 seen before"
    assert a.failsafe_current_a == 0.0


@pytest.mark.parametrize(("name", "msg", "field"), [
    ("fail-safe 80 A", limits(term=3, failsafe_a=80.0, c1=16), "failsafe_current_a"),
    ("fail-safe above the bound", limits(term=3, failsafe_a=16.0, c1=16), "failsafe_current_a"),
    ("lease a minute", limits(term=3, valid_for_s=60.0, c1=16), "lease_s"),
    ("lease 0.5 s", limits(term=3, valid_for_s=0.5, c1=16), "lease_s"),
    ("older term", limits(term=1, c1=16), "term"),
])
def test_limits_outside_the_bounds_are_refused_until_the_master_obeys_them(
        name: str, msg: MasterLimits, field: str) -> None:
    a = applier(initial_failsafe_a=6.0, bounds=BOUNDED, last_seen_term=2)
    assert not a.on_limits(msg, now_s=0.0), name
    assert a.refusal is not None and a.refusal.field == field
    assert (a.term_applied, a.last_seen_term, a.lease_ok(0.0)) == (0, 2, False)
    assert view(a.offered(0.0)) == {1: (6.0, F), 2: (6.0, F)}
    assert a.on_limits(limits(term=3, cycle=2, failsafe_a=6.0, c1=16), now_s=1.0)
    assert a.refusal is None
    assert (a.refused_reason, a.last_seen_term) == ("", 3)


def test_the_failsafe_bound_never_exceeds_the_charger_limit() -> None:
    a = applier(charger_limit_a=10.0, bounds=LinkBounds(max_failsafe_a=16.0))
    assert not a.on_limits(limits(failsafe_a=16.0, c1=10), now_s=0.0)
    assert a.refused_reason == ("fail-safe current 16 A is outside this agent's bound "
                                "(0 or 6-10 A)")
    assert a.on_limits(limits(failsafe_a=10.0, c1=10), now_s=0.0)


def test_a_refusal_from_the_shell_is_reported_until_the_agent_obeys() -> None:
    a = applier()
    a.refuse(Refusal(field="limits", value=0.0, reason="lease 0 s: valid_for_s must be > 0"))
    assert a.refused_reason == "lease 0 s: valid_for_s must be > 0"
    assert a.on_limits(limits(c1=16), now_s=0.0)
    assert a.refused_reason == ""


@pytest.mark.parametrize(("kw", "match"), [
    ({"max_failsafe_a": 4.0}, "max_failsafe_a"),
    ({"max_failsafe_a": 81.0}, "max_failsafe_a"),
    ({"min_lease_s": 0.0}, "min_lease_s"),
    ({"min_lease_s": 5.0, "max_lease_s": 4.0}, "max_lease_s"),
    ({"max_lease_s": 7200.0}, "max_lease_s"),
])
def test_bounds_refuse_impossible_settings(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LinkBounds(**kw)


def test_an_initial_failsafe_above_the_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="initial_failsafe_a"):
        applier(initial_failsafe_a=16.0, bounds=BOUNDED)
