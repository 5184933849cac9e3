"""Random but realistic days of a car park, seeded: the same seed gives the same day.

An office car park (scenario B): chargers with rotated wiring behind a building on one
grid connection. Drivers arrive around 08:30 (sd 1 h), some leave at lunch and others
come for the afternoon; a car is one of a few common kinds (1-phase 32 A, 3-phase 11 kW
and 22 kW onboard chargers) with a battery of 40-100 kWh, arrives at 10-60 % and stops at
its driver's limit (80 % mostly, sometimes 100 %: the taper then matters). Response delays
of 1-8 s, as cars really differ. `to_toml` writes the day as a scenario file.
"""

from __future__ import annotations

import random
from typing import Any

from hw.sim.ev import EvSpec
from hw.sim.site import SiteProfile, SiteSpec
from master.allocation import CtPlacement, GroupConfig, Mode, Phase
from master.sim.scenario import Arrival, ChargerSpec, GroupSpec, Scenario, check

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
ROTATIONS = ((L1, L2, L3), (L2, L3, L1), (L3, L1, L2))  # manual 5.3: rotate per charger
# (phases, onboard max A per phase, share of the fleet): a 7.4 kW single-phase charger,
# 11 kW and 22 kW three-phase ones.
EV_KINDS = ((1, 32.0, 0.3), (3, 16.0, 0.5), (3, 32.0, 0.2))


def _hhmm(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def random_day(seed: int, *, chargers: int = 10, fuse_a: float = 100.0,
               peak_a: float = 45.0, name: str | None = None) -> Scenario:
    """An office day with `chargers` io7 Doubles (2 sockets each) on `fuse_a` per phase."""
    rng = random.Random(seed)
    specs = tuple(ChargerSpec(charger_id=f"io7-{i + 1:02d}", group="carpark",
                              current_limit_a=32.0, wiring=ROTATIONS[i % 3])
                  for i in range(chargers))
    arrivals: list[Arrival] = []
    for spec in specs:
        for k in (1, 2):
            t = rng.gauss(8.5 * 3600, 3600)
            while t < 20 * 3600 and rng.random() < 0.9:
                stay = rng.uniform(2.0, 9.0) * 3600
                at, leave = max(6 * 3600.0, t), min(t + stay, 23.5 * 3600)
                if leave - at < 1800:
                    break
                phases, onboard, _ = rng.choices(EV_KINDS, [w for *_, w in EV_KINDS])[0]
                ev = EvSpec(phases=phases, onboard_max_a=onboard,
                            battery_wh=rng.choice((40, 50, 60, 77, 100)) * 1000.0,
                            response_delay_s=round(rng.uniform(1.0, 8.0), 1),
                            target_soc=0.8 if rng.random() < 0.8 else 1.0)
                arrivals.append(Arrival(at_s=round(at), charger_id=spec.charger_id,
                                        connector_id=k, ev=ev,
                                        soc=round(rng.uniform(0.1, 0.6), 2),
                                        leave_s=round(leave)))
                t = leave + rng.uniform(0.2, 3.0) * 3600
    group = GroupConfig(name="carpark", mode=Mode.DYNAMIC, limit_a=fuse_a,
                        fallback_limit_a=round(fuse_a * 0.4), ct_placement=CtPlacement.GRID)
    scenario = Scenario(
        name=name or f"random-{seed}", fuse_a=(fuse_a,) * 3,
        description=f"random office day, seed {seed}, {chargers} io7 Doubles, "
                    f"3 x {fuse_a:g} A",
        site=SiteSpec(profile=SiteProfile.OFFICE, peak_a=peak_a, noise_a=1.5, seed=seed),
        start_s=0.0, end_s=86_400.0, groups=(GroupSpec(config=group),), chargers=specs,
        arrivals=tuple(sorted(arrivals, key=lambda a: a.at_s)))
    check(scenario)
    return scenario


def to_toml(s: Scenario) -> str:
    """The scenario as a file `load_scenario` reads back to the same scenario."""
    names = {L1: "L1", L2: "L2", L3: "L3", None: "-"}
    out = [f'name = "{s.name}"', f'description = "{s.description}"', "", "[site]",
           f"fuse_a = [{', '.join(f'{f:g}' for f in s.fuse_a)}]",
           f'profile = "{s.site.profile.value}"', f"peak_a = {s.site.peak_a:g}",
           f"noise_a = {s.site.noise_a:g}", f"seed = {s.site.seed}",
           f"phase_factors = [{', '.join(f'{f:g}' for f in s.site.phase_factors)}]",
           f'start = "{_hhmm(s.start_s)}"', f'end = "{_hhmm(s.end_s)}"']
    for g in s.groups:
        c = g.config
        fields: dict[str, Any] = {
            "name": f'"{c.name}"', "mode": f'"{c.mode.name.lower()}"', "limit_a": f"{c.limit_a:g}",
            "phases": "[" + ", ".join(f'"{names[p]}"' for p in c.phases) + "]",
            "ct_placement": f'"{c.ct_placement.name.lower()}"',
            "offline_strategy": f'"{c.offline_strategy.name.lower()}"'}
        if c.fallback_limit_a is not None:
            fields["fallback_limit_a"] = f"{c.fallback_limit_a:g}"
        out += ["", "[[groups]]", *(f"{k} = {v}" for k, v in fields.items())]
    for ch in s.chargers:
        wiring = ", ".join(f'"{names[p]}"' for p in ch.wiring)
        out += ["", "[[chargers]]", f'id = "{ch.charger_id}"', f'group = "{ch.group}"',
                f"current_limit_a = {ch.current_limit_a:g}", f"wiring = [{wiring}]"]
    for a in s.arrivals:
        out += ["", "[[arrivals]]", f'at = "{_hhmm(a.at_s)}"', f'charger = "{a.charger_id}"',
                f"connector = {a.connector_id}", f"phases = {a.ev.phases}",
                f"max_current_a = {a.ev.onboard_max_a:g}",
                f"battery_kwh = {a.ev.battery_wh / 1000:g}", f"soc = {a.soc:g}",
                f"target_soc = {a.ev.target_soc:g}",
                f"response_delay_s = {a.ev.response_delay_s:g}",
                f'departure = "{_hhmm(a.leave_s)}"']
    return "\n".join(out) + "\n"
