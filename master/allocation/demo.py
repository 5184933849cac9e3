"""`make run` until the services exist: a scenario B car park in virtual time.

Four io7 Doubles (two with rotated wiring) on a 3 x 63 A connection behind an office
building, the Sense CT kit on the grid incomer, dynamic mode. EVs of different kinds
arrive through the morning and leave when full or at their departure time. Every
virtual second the allocation engine runs on the CT reading and the connectors'
measured draw, and every EV model follows its offer with its own response delay.
A frame is printed every `--every` virtual minutes; the summary says whether any
phase ever went over the fuse.

This drives the real engine and the real EV/site models; it does not run the agent
and master processes (that is issue 4's `make run`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from hw.sim.ev import EvModel, EvSpec
from hw.sim.site import SiteModel, SiteProfile, SiteSpec
from master.allocation import (
    Allocation,
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

L1, L2, L3 = Phase.L1, Phase.L2, Phase.L3
FUSE_A = 63.0
WIRING = {"io7-1": (L1, L2, L3), "io7-2": (L1, L2, L3), "io7-3": (L2, L3, L1),
          "io7-4": (L3, L1, L2)}


@dataclass(frozen=True, slots=True)
class Arrival:
    at_h: float
    charger: str
    connector: int
    spec: EvSpec
    soc: float
    leave_h: float


def _arrivals() -> list[Arrival]:
    small3 = EvSpec(phases=3, onboard_max_a=16.0, battery_wh=50_000.0, response_delay_s=2.0)
    big3 = EvSpec(phases=3, onboard_max_a=32.0, battery_wh=77_000.0, response_delay_s=4.0)
    one = EvSpec(phases=1, onboard_max_a=32.0, battery_wh=40_000.0, response_delay_s=8.0)
    return [
        Arrival(7.5, "io7-1", 1, big3, 0.20, 17.0),
        Arrival(7.7, "io7-1", 2, small3, 0.40, 12.0),
        Arrival(8.0, "io7-2", 1, one, 0.30, 16.5),
        Arrival(8.2, "io7-3", 1, big3, 0.10, 18.0),
        Arrival(8.3, "io7-3", 2, one, 0.50, 11.0),
        Arrival(8.5, "io7-4", 1, small3, 0.25, 15.0),
        Arrival(8.8, "io7-4", 2, big3, 0.35, 17.5),
        Arrival(9.0, "io7-2", 2, small3, 0.60, 13.0),
    ]


class CarPark:
    """The physical side: EV models on connectors, the building, the CT kit."""

    def __init__(self) -> None:
        self.site = SiteModel(SiteSpec(profile=SiteProfile.OFFICE, peak_a=30.0, noise_a=1.5))
        self.evs: dict[tuple[str, int], tuple[EvModel, Arrival]] = {}
        self.pending = sorted(_arrivals(), key=lambda a: a.at_h)
        self.delivered_wh = 0.0

    def step(self, now_s: float, alloc: Allocation | None) -> None:
        while self.pending and self.pending[0].at_h * 3600 <= now_s:
            a = self.pending.pop(0)
            ev = EvModel(a.spec, soc=a.soc, now_s=now_s)
            ev.set_supply(now_s, True)
            self.evs[(a.charger, a.connector)] = (ev, a)
        for key, (ev, a) in list(self.evs.items()):
            offered = alloc.current_a(*key) if alloc and key in alloc.keys else 0.0
            ev.offer(now_s, offered)
            ev.advance(now_s)
            if now_s >= a.leave_h * 3600:
                self.delivered_wh += ev.status.drawn_wh
                del self.evs[key]

    def line_currents(self, key: tuple[str, int]) -> tuple[float, float, float]:
        if key not in self.evs:
            return (0.0, 0.0, 0.0)
        draw = self.evs[key][0].status.phase_currents_a
        return (draw[0], draw[1] if len(draw) > 1 else 0.0, draw[2] if len(draw) > 2 else 0.0)

    def chargers(self) -> tuple[ChargerInput, ...]:
        out = []
        for cid, wiring in WIRING.items():
            conns = []
            for k in (1, 2):
                entry = self.evs.get((cid, k))
                ev_lines = None
                if entry is not None and entry[0].spec.phases == 1:
                    ev_lines = (True, False, False)
                conns.append(ConnectorInput(
                    connector_id=k, wiring=wiring, max_current_a=32.0,
                    wants_power=entry is not None and entry[0].status.requesting,
                    ev_lines=ev_lines, measured_a=self.line_currents((cid, k)),
                    session_energy_wh=entry[0].status.drawn_wh if entry else 0.0))
            out.append(ChargerInput(charger_id=cid, current_limit_a=32.0, connectors=tuple(conns)))
        return tuple(out)

    def grid_a(self, now_s: float) -> list[float]:
        """What the Sense CT kit reads: the building plus every EV, per site phase."""
        phases = list(self.site.phase_currents_a(now_s))
        for (cid, k), _ in self.evs.items():
            for line, amps in enumerate(self.line_currents((cid, k))):
                phases[WIRING[cid][line]] += amps
        return phases


def _frame(now_s: float, alloc: Allocation, grid: list[float], park: CarPark) -> str:
    hh, mm = int(now_s // 3600), int(now_s % 3600 // 60)
    head = "  ".join(f"L{p + 1} {grid[p]:5.1f}/{FUSE_A:.0f} A" for p in range(3))
    lines = [f"{hh:02d}:{mm:02d}  grid {head}  ct={alloc.ct_status.value}"]
    for r in alloc.connectors:
        key = (r.charger_id, r.connector_id)
        drawn = max(park.line_currents(key))
        phase = f" {r.limiting_phase.name}" if r.limiting_phase is not None else ""
        soc = f"soc {park.evs[key][0].status.soc:4.0%}" if key in park.evs else "        "
        lines.append(f"    {r.charger_id}/{r.connector_id}  offer {r.current_a:5.1f} A  "
                     f"draw {drawn:5.1f} A  {soc}  {r.reason.value}{phase}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7-alloc-demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--start-h", type=float, default=7.0, help="virtual start, hour of day")
    ap.add_argument("--hours", type=float, default=6.0, help="virtual hours to run")
    ap.add_argument("--every", type=float, default=30.0, help="print a frame every N minutes")
    args = ap.parse_args(argv)
    group = GroupConfig(name="garage", mode=Mode.DYNAMIC, limit_a=FUSE_A,
                        fallback_limit_a=24.0, ct_placement=CtPlacement.GRID, margin_a=2.0,
                        offline_strategy=OfflineStrategy.MAXIMISE)
    park = CarPark()
    state: EngineState | None = None
    alloc: Allocation | None = None
    peak_over = 0.0
    start = int(args.start_h * 3600)
    for now in range(start, start + int(args.hours * 3600)):
        park.step(float(now), alloc)
        grid = park.grid_a(float(now))
        peak_over = max(peak_over, *(g - FUSE_A for g in grid))
        snap = Snapshot(now_s=float(now), group=group, chargers=park.chargers(),
                        ct=CtReading(currents_a=(grid[0], grid[1], grid[2]), taken_at_s=now))
        alloc = allocate(snap, state)
        state = alloc.state
        if (now - start) % int(args.every * 60) == 0:
            print(_frame(float(now), alloc, grid, park), flush=True)
    delivered = park.delivered_wh + sum(ev.status.drawn_wh for ev, _ in park.evs.values())
    print(f"\n{args.hours:g} virtual hours, {len(_arrivals())} EVs: {delivered / 1000:.1f} kWh "
          f"delivered; worst phase vs the {FUSE_A:.0f} A fuse: "
          f"{'never over' if peak_over <= 0 else f'{peak_over:.1f} A over'} "
          f"(EV response delays included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
