"""`io7-sim`: run a day of a car park in virtual time, measure it, compare policies.

  io7-sim run SCENARIO [--policy P] [--json] [--plot out.png]
  io7-sim compare SCENARIO [--json]
  io7-sim generate --seed N [--chargers N] [--fuse-a A] [-o file.toml]

SCENARIO is a scenario file (deploy/scenarios/*.toml) or `random:SEED` for a generated
office day (6 io7 Doubles, 12 sockets, on 3 x 63 A behind a 30 A-peak office; use
`generate` for other sizes). Exit status 2 for a scenario that cannot be read (the message names the
file and key).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from master.sim.controllers import POLICIES
from master.sim.generator import random_day, to_toml
from master.sim.kpi import measures
from master.sim.possible import PossibleError, energy_possible
from master.sim.run import RunResult, simulate
from master.sim.scenario import Scenario, ScenarioError, load_scenario

ROWS = (
    ("overload_amp_seconds", "overload (A·s, L1/L2/L3)"),
    ("peak_overload_a", "peak overload (A)"),
    ("energy_delivered_kwh", "energy delivered (kWh)"),
    ("energy_possible_kwh", "energy possible (kWh)"),
    ("utilisation", "utilisation"),
    ("fairness_jain", "fairness (Jain)"),
    ("pauses_per_session", "pauses per session"),
    ("contactor_switches", "contactor switches"),
    ("unserved_sessions", "unserved sessions"),
    ("max_cycle_ms", "max cycle (ms)"),
)


def scenario_from(spec: str) -> Scenario:
    """A scenario file, or `random:SEED` (an office day from master.sim.generator)."""
    if spec.startswith("random:"):
        try:
            return random_day(int(spec.split(":", 1)[1]), chargers=6, fuse_a=63.0, peak_a=30.0)
        except ValueError as exc:
            raise ScenarioError(f"{spec}: expected random:<whole number>") from exc
    return load_scenario(Path(spec))


def run_one(spec: str, policy: str, plot: str | None = None) -> dict[str, Any]:
    """Run `spec` under `policy`; the KPI object (and the figure, if asked)."""
    scenario = scenario_from(spec)
    run: RunResult = simulate(scenario, policy)
    if plot:
        from master.sim.plot import plot_run  # noqa: PLC0415 (matplotlib only when asked)

        plot_run(run, f"{scenario.name}: {scenario.description} ({policy})", Path(plot))
    return measures(scenario, run, energy_possible(scenario))


def table(results: list[dict[str, Any]]) -> str:
    """The KPI objects side by side, one column per policy, as markdown."""
    head = "| measure | " + " | ".join(r["policy"] for r in results) + " |"
    lines = [head, "|---|" + "---|" * len(results)]
    for key, label in ROWS:
        cells = []
        for r in results:
            v = r[key]
            cells.append("/".join(f"{x:g}" for x in v) if isinstance(v, list) else f"{v:g}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(spec: str, workers: int = 3) -> list[dict[str, Any]]:
    """The project and both baselines on the same day, in parallel processes."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_one, [spec] * len(POLICIES), POLICIES))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7-sim", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run one scenario under one policy")
    run_p.add_argument("scenario")
    run_p.add_argument("--policy", choices=POLICIES, default="project")
    run_p.add_argument("--json", action="store_true", help="print the KPI object as JSON")
    run_p.add_argument("--plot", metavar="OUT.png", help="draw currents and offers")
    cmp_p = sub.add_parser("compare", help="the project and both baselines side by side")
    cmp_p.add_argument("scenario")
    cmp_p.add_argument("--json", action="store_true")
    gen_p = sub.add_parser("generate", help="write a random office day as a scenario file")
    gen_p.add_argument("--seed", type=int, required=True)
    gen_p.add_argument("--chargers", type=int, default=10)
    gen_p.add_argument("--fuse-a", type=float, default=100.0)
    gen_p.add_argument("-o", "--out", help="file to write (default: stdout)")
    args = ap.parse_args(argv)
    try:
        if args.command == "generate":
            text = to_toml(random_day(args.seed, chargers=args.chargers, fuse_a=args.fuse_a))
            if args.out:
                Path(args.out).write_text(text)
            else:
                sys.stdout.write(text)
            return 0
        scenario_from(args.scenario)  # a bad file fails here, before any work starts
        if args.command == "run":
            result = run_one(args.scenario, args.policy, args.plot)
            print(json.dumps(result) if args.json else table([result]))
            return 0
        results = compare(args.scenario)
        print(json.dumps(results) if args.json else table(results))
        return 0
    except ScenarioError as exc:
        print(f"io7-sim: {exc}", file=sys.stderr)
        return 2
    except PossibleError as exc:
        print(f"io7-sim: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
