"""io7-sim: scenarios, the virtual-time loop, the baselines, the bound, the KPIs, the CLI.

Short scenarios (an hour or two of virtual time) keep these fast; the full days are
benchmarks (README, `io7-sim compare`), not tests.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from hw.sim.ev import EvSpec
from hw.sim.site import SiteProfile, SiteSpec
from master.allocation import CtPlacement, GroupConfig, Mode, OfflineStrategy, Phase
from master.sim.cli import main as sim_main
from master.sim.generator import random_day, to_toml
from master.sim.kpi import jain, measures
from master.sim.possible import energy_possible
from master.sim.run import simulate
from master.sim.scenario import (
    Arrival,
    ChargerSpec,
    Event,
    GroupSpec,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

SCENARIOS = sorted((Path(__file__).parents[2] / "deploy" / "scenarios").glob("*.toml"))
L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
H = 3600.0


def small(*, fuse_a: float = 40.0, building_a: float = 10.0, arrivals: int = 4,
          events: tuple[Event, ...] = (), hours: float = 1.5,
          offline: OfflineStrategy = OfflineStrategy.MAXIMISE) -> Scenario:
    """Two io7 Doubles on a small connection, a flat building load, EVs from 08:00."""
    chargers = (ChargerSpec(charger_id="a", group="g", current_limit_a=32.0,
                            wiring=(L1, L2, L3)),
                ChargerSpec(charger_id="b", group="g", current_limit_a=32.0,
                            wiring=(L2, L3, L1)))
    evs = [Arrival(at_s=8 * H + 60 * i, charger_id="ab"[i // 2], connector_id=i % 2 + 1,
                   ev=EvSpec(phases=3 if i % 2 == 0 else 1, onboard_max_a=32.0,
                             battery_wh=60_000.0, response_delay_s=2.0 + 2 * i,
                             target_soc=0.8),
                   soc=0.2, leave_s=8 * H + hours * H)
           for i in range(arrivals)]
    group = GroupConfig(name="g", mode=Mode.DYNAMIC, limit_a=fuse_a,
                        fallback_limit_a=min(24.0, fuse_a),
                        ct_placement=CtPlacement.GRID, offline_strategy=offline)
    return Scenario(name="small", fuse_a=(fuse_a,) * 3,
                    site=SiteSpec(profile=SiteProfile.STEP, base_a=building_a, step_a=0.0),
                    start_s=8 * H - 60, end_s=8 * H + hours * H,
                    groups=(GroupSpec(config=group),), chargers=chargers,
                    arrivals=tuple(evs), events=events)


# -- scenario files ------------------------------------------------------------------------

@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_named_scenario_loads(path: Path) -> None:
    s = load_scenario(path)
    assert s.arrivals and s.chargers and s.groups
    assert s.name == path.stem


def test_the_named_scenarios_cover_installation_scenarios_a_b_and_c() -> None:
    loaded = [load_scenario(p) for p in SCENARIOS]
    assert any(g.agent_only for s in loaded for g in s.groups)  # A
    assert any(len(s.groups) == 1 and len(s.chargers) > 1 for s in loaded)  # B
    assert any(len(s.groups) == 3 and all(len(g.config.phases) == 1 for g in s.groups)
               for s in loaded)  # C
    kinds = {e.kind for s in loaded for e in s.events}
    assert kinds == {"charger_offline", "ct_silent", "load_step"}


@pytest.mark.parametrize(("patch", "where"), [
    ({"site": {"fuse_a": 5}}, "site.fuse_a"),
    ({"site": {"fuse_a": 63, "profile": "factory"}}, "site.profile"),
    ({"groups": [{"name": "g", "limit_a": 63, "mode": "turbo"}]}, "groups[0].mode"),
    ({"chargers": [{"id": "c", "group": "g", "current_limit_a": 70}]},
     "chargers[0].current_limit_a"),
    ({"chargers": [{"id": "c", "group": "g", "wiring": ["L4"]}]}, "chargers[0].wiring"),
    ({"arrivals": [{"at": "25:99", "charger": "c", "connector": 1, "departure": "26:00"}]},
     "arrivals[0].at"),
    ({"arrivals": [{"at": "08:00", "charger": "c", "connector": 1, "departure": "07:00"}]},
     "arrivals[0].departure"),
    ({"arrivals": [{"at": "08:00", "charger": "c", "connector": 1, "departure": "09:00",
                    "soc": 1.5}]}, "arrivals[0].soc"),
    ({"events": [{"kind": "meteor", "from": "08:00"}]}, "events[0].kind"),
])
def test_a_bad_value_names_the_file_and_the_key(patch: dict[str, object], where: str) -> None:
    raw: dict[str, object] = {
        "site": {"fuse_a": 63}, "groups": [{"name": "g", "limit_a": 63, "fallback_limit_a": 20}],
        "chargers": [{"id": "c", "group": "g"}],
        "arrivals": [{"at": "08:00", "charger": "c", "connector": 1, "departure": "09:00"}],
    }
    raw.update(patch)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(raw, "day.toml")
    assert str(err.value).startswith(f"day.toml: {where}:"), str(err.value)


def test_references_overlaps_and_typos_are_checked() -> None:
    base = {"site": {"fuse_a": 63},
            "groups": [{"name": "g", "limit_a": 63, "fallback_limit_a": 20}],
            "chargers": [{"id": "c", "group": "g"}]}
    both = [{"at": "08:00", "charger": "c", "connector": 1, "departure": "10:00"},
            {"at": "09:00", "charger": "c", "connector": 1, "departure": "11:00"}]
    with pytest.raises(ScenarioError, match="still there"):
        parse_scenario({**base, "arrivals": both}, "x.toml")
    one = [{"id": "c", "group": "g", "connectors": 1}]
    with pytest.raises(ScenarioError, match="no connector c/2"):
        parse_scenario({**base, "chargers": one, "arrivals": [
            {"at": "08:00", "charger": "c", "connector": 2, "departure": "09:00"}]}, "x.toml")
    with pytest.raises(ScenarioError, match="group 'h'"):
        parse_scenario({**base, "chargers": [{"id": "c", "group": "h"}]}, "x.toml")
    with pytest.raises(ScenarioError, match=r"chargers\[0\].arrivals: unknown key"):
        parse_scenario({**base, "chargers": [{"id": "c", "group": "g", "arrivals": []}]},
                       "x.toml")
    minimise = [{"name": "g", "limit_a": 63, "fallback_limit_a": 6,
                 "offline_strategy": "minimise"}]
    with pytest.raises(ScenarioError, match=r"Minimise needs 12\.0 A"):
        parse_scenario({**base, "groups": minimise}, "x.toml")


def test_a_random_day_is_seeded_and_survives_its_file() -> None:
    day = random_day(4, chargers=4)
    assert day == random_day(4, chargers=4)
    assert day.arrivals != random_day(5, chargers=4).arrivals
    again = parse_scenario(tomllib.loads(to_toml(day)), "gen.toml")
    assert (again.arrivals, again.groups, again.chargers, again.site) == \
        (day.arrivals, day.groups, day.chargers, day.site)


# -- the loop ------------------------------------------------------------------------------

def test_the_project_shares_a_tight_connection_without_overload() -> None:
    s = small()
    run = simulate(s, "project")
    m = measures(s, run, energy_possible(s))
    assert m["overload_amp_seconds"] == [0.0, 0.0, 0.0]
    assert m["energy_delivered_kwh"] > 0.0
    assert 0.5 < m["utilisation"] <= 1.01  # the bound is per minute; the run per second
    # Every connector got current at some point; nobody sat at 0 A all along.
    assert (run.trace.offered_a.max(axis=0) >= 6.0).all()
    # The room on the tightest phase was used: the grid came within ~margin of the fuse.
    assert run.trace.grid_a.max() > 40.0 - 5.0


def test_a_load_step_is_followed_and_only_its_first_seconds_may_overload() -> None:
    step = Event(kind="load_step", from_s=8 * H + 40 * 60, to_s=8 * H + 60 * 60,
                 amps=(15.0, 15.0, 15.0))
    s = small(events=(step,))
    run = simulate(s, "project")
    assert run.load_steps >= 1
    assert run.overload_amp_seconds == (0.0, 0.0, 0.0)
    i = int(step.from_s + 30 - run.trace.t_s[0])  # 30 s after the step, well settled
    assert (run.trace.grid_a[i] <= 40.0).all()


def test_a_charger_offline_and_a_silent_ct_cause_no_overload() -> None:
    events = (Event(kind="charger_offline", charger_id="b", from_s=8 * H + 30 * 60,
                    to_s=8 * H + 35 * 60),
              Event(kind="ct_silent", group="*", from_s=8 * H + 45 * 60, to_s=8 * H + 47 * 60))
    s = small(events=events, offline=OfflineStrategy.MINIMISE)
    run = simulate(s, "project")
    assert run.overload_amp_seconds == (0.0, 0.0, 0.0)
    b1 = run.trace.connectors.index(("b", 1))
    i = int(8 * H + 33 * 60 - run.trace.t_s[0])
    assert run.trace.offered_a[i, b1] == 6.0  # its agent fell back to Minimise's 6 A


def test_the_runs_are_deterministic() -> None:
    s = small(hours=0.5)
    a, b = simulate(s, "project"), simulate(s, "project")
    assert a.trace.grid_a.tolist() == b.trace.grid_a.tolist()
    assert [x.delivered_wh for x in a.sessions] == [x.delivered_wh for x in b.sessions]


def test_equal_split_gives_everyone_the_same_and_first_come_keeps_its_grants() -> None:
    s = small(fuse_a=63.0, building_a=5.0, hours=1.0)
    eq = simulate(s, "equal-split")
    i = int(8 * H + 20 * 60 - eq.trace.t_s[0])  # all four plugged in and settled
    offers = eq.trace.offered_a[i]
    assert len(set(offers.tolist())) == 1 and offers[0] >= 6.0
    fc = simulate(s, "first-come")
    a1 = fc.trace.connectors.index(("a", 1))
    first = fc.trace.offered_a[:, a1]
    on = first[first > 0]
    assert len(set(on.tolist())) == 1  # what it took at its start, to the end


def test_the_project_beats_both_baselines_on_a_congested_morning() -> None:
    """The first car is nearly full: first-come keeps its grant idle, equal-split cannot
    give 4 x 6 A out of 22 A; the project rotates and rebalances."""
    s = small(fuse_a=32.0, building_a=8.0, arrivals=4, hours=2.0)
    three = EvSpec(phases=3, onboard_max_a=32.0, battery_wh=77_000.0, target_soc=0.8)
    evs = [dataclasses.replace(a, ev=three) for a in s.arrivals]
    evs[0] = dataclasses.replace(evs[0], soc=0.72, ev=dataclasses.replace(
        three, onboard_max_a=16.0, battery_wh=40_000.0))
    s = dataclasses.replace(s, arrivals=tuple(evs))
    possible = energy_possible(s)
    got = {p: measures(s, simulate(s, p), possible) for p in
           ("project", "equal-split", "first-come")}
    assert got["project"]["overload_amp_seconds"] == [0.0, 0.0, 0.0]
    for base in ("equal-split", "first-come"):
        assert got["project"]["utilisation"] > got[base]["utilisation"]
        assert got["project"]["fairness_jain"] >= got[base]["fairness_jain"]
    assert got["project"]["utilisation"] > 0.8  # 2 A of its 24 A of room is the margin


# -- the bound and the measures ------------------------------------------------------------

def test_the_bound_of_one_ev_alone_is_its_rate_times_its_stay() -> None:
    s = small(fuse_a=100.0, arrivals=1, hours=1.0)
    only = dataclasses.replace(s.arrivals[0], at_s=8 * H, leave_s=9 * H,
                               ev=dataclasses.replace(s.arrivals[0].ev, onboard_max_a=16.0))
    s = dataclasses.replace(s, arrivals=(only,))
    assert energy_possible(s).energy_wh == pytest.approx(16 * 230 * 3, rel=1e-6)  # 11.04 kWh


def test_the_bound_respects_the_fuse_less_the_building() -> None:
    s = small(fuse_a=20.0, building_a=8.0, arrivals=1, hours=1.0)
    only = dataclasses.replace(s.arrivals[0], at_s=8 * H, leave_s=9 * H)
    s = dataclasses.replace(s, arrivals=(only,))
    assert energy_possible(s).energy_wh == pytest.approx(12 * 230 * 3, rel=1e-6)


def test_jain() -> None:
    assert jain([1.0, 1.0, 1.0]) == 1.0
    assert jain([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([]) == 1.0


# -- the command line ----------------------------------------------------------------------

@pytest.fixture
def day_file(tmp_path: Path) -> Path:
    path = tmp_path / "day.toml"
    path.write_text(to_toml(small(hours=0.5)))
    return path


def test_run_json_prints_every_measure(day_file: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert sim_main(["run", str(day_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("overload_amp_seconds", "peak_overload_a", "energy_delivered_kwh",
                "energy_possible_kwh", "utilisation", "fairness_jain", "pauses_per_session",
                "contactor_switches", "unserved_sessions", "max_cycle_ms"):
        assert key in out
    assert len(out["overload_amp_seconds"]) == 3


def test_run_plot_writes_a_png(day_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.png"
    assert sim_main(["run", str(day_file), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_prints_the_three_policies(day_file: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["compare", str(day_file)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head == "| measure | project | equal-split | first-come |"


def test_a_bad_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nfuse_a = "lots"\n')
    assert sim_main(["run", str(bad)]) == 2
    assert f"{bad}: site.fuse_a:" in capsys.readouterr().err
