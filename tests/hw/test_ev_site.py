"""The EV and site models: energy conservation, response delay, SuspendedEV, day profiles."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.pilot import PilotState
from hw.sim.ev import EvModel, EvSpec
from hw.sim.site import SECONDS_PER_HOUR, SiteModel, SiteProfile, SiteSpec


def charging_ev(spec: EvSpec, *, soc: float, offered_a: float) -> EvModel:
    ev = EvModel(spec, soc=soc)
    ev.set_supply(0.0, True)
    ev.offer(0.0, offered_a)
    return ev


def test_response_delay_is_honoured_both_ways() -> None:
    ev = charging_ev(EvSpec(response_delay_s=4.0), soc=0.2, offered_a=16.0)
    assert ev.advance(3.99).phase_currents_a == (0.0, 0.0, 0.0)
    assert ev.advance(4.0).phase_currents_a == (16.0, 16.0, 16.0)
    ev.offer(10.0, 8.0)
    assert ev.advance(13.9).phase_currents_a[0] == 16.0
    assert ev.advance(14.0).phase_currents_a[0] == 8.0


def test_losing_the_supply_stops_the_draw_at_once() -> None:
    ev = charging_ev(EvSpec(response_delay_s=5.0), soc=0.2, offered_a=16.0)
    ev.advance(6.0)
    ev.set_supply(6.0, False)
    assert ev.status.phase_currents_a == (0.0, 0.0, 0.0)


DRAW_CASES = [
    ("draws what is offered", EvSpec(onboard_max_a=32.0), 20.0, 20.0),
    ("onboard charger caps", EvSpec(onboard_max_a=16.0), 32.0, 16.0),
    ("single phase", EvSpec(phases=1, onboard_max_a=32.0), 32.0, 32.0),
    ("below 6 A offered draws nothing", EvSpec(), 5.0, 0.0),
]


@pytest.mark.parametrize(
    ("spec", "offered_a", "expected_a"),
    [c[1:] for c in DRAW_CASES],
    ids=[c[0] for c in DRAW_CASES],
)
def test_draw_follows_offer_and_onboard_limit(
    spec: EvSpec, offered_a: float, expected_a: float
) -> None:
    ev = charging_ev(spec, soc=0.2, offered_a=offered_a)
    status = ev.advance(spec.response_delay_s + 1.0)
    assert status.phase_currents_a == (expected_a,) * spec.phases


def test_taper_above_taper_start() -> None:
    spec = EvSpec(battery_wh=10_000.0, taper_start_soc=0.8, response_delay_s=0.0)
    ev = charging_ev(spec, soc=0.9, offered_a=16.0)
    draw_a = ev.advance(1.0).phase_currents_a[0]
    assert spec.taper_end_a < draw_a < spec.onboard_max_a
    assert draw_a == pytest.approx(9.0, abs=0.1)  # half-way down the taper at 90 %


def test_suspended_ev_when_full() -> None:
    spec = EvSpec(battery_wh=5_000.0, response_delay_s=0.0)
    ev = charging_ev(spec, soc=0.95, offered_a=16.0)
    status = ev.advance(4 * SECONDS_PER_HOUR)
    assert status.full and status.suspended_ev
    assert status.soc == 1.0
    assert status.phase_currents_a == (0.0, 0.0, 0.0)
    assert status.pilot_state is PilotState.B
    assert not status.requesting


@settings(max_examples=40, deadline=None)
@given(
    phases=st.sampled_from([1, 3]),
    soc=st.floats(min_value=0.0, max_value=1.0),
    offered_a=st.floats(min_value=0.0, max_value=32.0),
    hours=st.floats(min_value=0.0, max_value=12.0),
    delay_s=st.floats(min_value=0.0, max_value=10.0),
)
def test_energy_is_conserved(
    phases: int, soc: float, offered_a: float, hours: float, delay_s: float
) -> None:
    spec = EvSpec(phases=phases, battery_wh=40_000.0, response_delay_s=delay_s)
    ev = charging_ev(spec, soc=soc, offered_a=offered_a)
    status = ev.advance(hours * SECONDS_PER_HOUR)
    assert status.stored_wh == pytest.approx(status.drawn_wh * spec.charge_efficiency, abs=1e-6)
    assert status.soc == pytest.approx(soc + status.stored_wh / spec.battery_wh, abs=1e-9)
    assert 0.0 <= status.soc <= 1.0
    max_wh = spec.onboard_max_a * spec.phase_v * phases * hours
    assert status.drawn_wh <= max_wh + 1e-6


def test_same_inputs_same_result_whatever_the_step() -> None:
    coarse = charging_ev(EvSpec(), soc=0.7, offered_a=16.0)
    fine = charging_ev(EvSpec(), soc=0.7, offered_a=16.0)
    coarse.advance(3 * SECONDS_PER_HOUR)
    for minute in range(1, 181):
        fine.advance(minute * 60.0)
    assert fine.status.drawn_wh == pytest.approx(coarse.status.drawn_wh, rel=1e-3)


def test_time_only_runs_forward_and_spec_is_checked() -> None:
    ev = EvModel(EvSpec(), soc=0.5)
    ev.advance(10.0)
    with pytest.raises(ValueError, match="forward"):
        ev.advance(5.0)
    with pytest.raises(ValueError, match="onboard"):
        EvSpec(onboard_max_a=5.0)
    with pytest.raises(ValueError, match="response delay"):
        EvSpec(response_delay_s=20.0)


@pytest.mark.parametrize(
    ("profile", "night_h", "busy_h"),
    [(SiteProfile.OFFICE, 3, 11), (SiteProfile.RESIDENTIAL, 3, 18)],
    ids=["office peaks mid-morning", "residential peaks in the evening"],
)
def test_profiles_follow_the_day(profile: SiteProfile, night_h: int, busy_h: int) -> None:
    site = SiteModel(SiteSpec(profile=profile, peak_a=50.0))
    night = site.phase_currents_a(night_h * SECONDS_PER_HOUR)
    busy = site.phase_currents_a(busy_h * SECONDS_PER_HOUR)
    assert busy[0] == pytest.approx(50.0)
    assert all(n < b for n, b in zip(night, busy, strict=True))
    assert busy[0] > busy[1] > busy[2]  # phase factors: the site is unbalanced


def test_step_profile_steps() -> None:
    site = SiteModel(SiteSpec(profile=SiteProfile.STEP, base_a=5.0, step_a=30.0, step_at_s=100.0))
    assert site.phase_currents_a(99.9)[0] == 5.0
    assert site.phase_currents_a(100.0)[0] == 35.0
    assert site.phase_currents_a(86_400.0 + 50.0)[0] == 5.0  # the next day starts again


def test_solar_makes_readings_negative_at_noon_only() -> None:
    site = SiteModel(SiteSpec(profile=SiteProfile.RESIDENTIAL, peak_a=20.0, solar_peak_a=25.0))
    assert all(i < 0.0 for i in site.phase_currents_a(13 * SECONDS_PER_HOUR))
    assert all(i > 0.0 for i in site.phase_currents_a(22 * SECONDS_PER_HOUR))


def test_noise_is_deterministic_per_seed_and_bounded() -> None:
    spec = SiteSpec(noise_a=2.0, seed=7)
    first, again = SiteModel(spec), SiteModel(spec)
    other = SiteModel(SiteSpec(noise_a=2.0, seed=8))
    quiet = SiteModel(SiteSpec())
    times = [t * 137.0 for t in range(600)]
    assert [first.phase_currents_a(t) for t in times] == [again.phase_currents_a(t) for t in times]
    assert [first.phase_currents_a(t) for t in times] != [other.phase_currents_a(t) for t in times]
    for t in times:
        for noisy, clean in zip(first.phase_currents_a(t), quiet.phase_currents_a(t), strict=True):
            assert abs(noisy - clean) <= 2.0


def test_site_spec_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="peak_a"):
        SiteSpec(peak_a=-1.0)
    with pytest.raises(ValueError, match="sunrise"):
        SiteSpec(sunrise_s=20 * SECONDS_PER_HOUR, sunset_s=6 * SECONDS_PER_HOUR)
