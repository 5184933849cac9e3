"""Control quality against the goals (issue 5): `make bench-sim`.

Runs `io7-sim compare` on every named scenario (deploy/scenarios) and on N seeded random
office days, and prints one table per scenario plus a summary against the goals:
zero overload beyond the step allowance, utilisation >= 0.97 of the day's optimum, Jain
fairness >= 0.95, <= 1 pause per session on average, and ahead of both baselines on
utilisation without losing on fairness. A benchmark: it takes minutes; nothing is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from master.sim.cli import run_one, table
from master.sim.controllers import POLICIES

SCENARIOS = sorted((Path(__file__).parents[2] / "deploy" / "scenarios").glob("*.toml"))


def _job(args: tuple[str, str]) -> dict[str, Any]:
    return run_one(*args)


def _verdict(results: list[dict[str, Any]]) -> str:
    mine = next(r for r in results if r["policy"] == "project")
    bases = [r for r in results if r["policy"] != "project"]
    ahead = all(mine["utilisation"] > b["utilisation"] for b in bases)
    fair = all(mine["fairness_jain"] >= b["fairness_jain"] - 0.005 for b in bases)
    zero = sum(mine["overload_amp_seconds"]) == 0.0
    return (f"project: overload {'zero' if zero else 'NOT zero'}, "
            f"{'ahead of' if ahead else 'NOT ahead of'} both baselines on utilisation, "
            f"fairness {'not lost' if fair else 'LOST'} (within 0.005)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=20, help="seeded random days (seeds 1..N)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    specs = [str(p) for p in SCENARIOS] + [f"random:{seed}" for seed in range(1, args.days + 1)]
    jobs = [(spec, policy) for spec in specs for policy in POLICIES]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        flat = list(pool.map(_job, jobs))
    by_spec = [flat[i:i + len(POLICIES)] for i in range(0, len(flat), len(POLICIES))]
    mine = []
    for spec, results in zip(specs, by_spec, strict=True):
        print(f"\n### {results[0]['scenario']} ({spec})\n")
        print(table(results))
        print(f"\n{_verdict(results)}")
        mine.append(next(r for r in results if r["policy"] == "project"))
    print("\n### project, over every scenario and day\n")
    print("| goal | target | median | worst | met |")
    print("|---|---|---|---|---|")
    rows = [
        ("overload beyond the step allowance (A·s)", "0",
         [sum(m["overload_amp_seconds"]) for m in mine], max, lambda v: v == 0.0),
        ("utilisation", ">= 0.97", [m["utilisation"] for m in mine], min,
         lambda v: v >= 0.97),
        ("fairness (Jain)", ">= 0.95", [m["fairness_jain"] for m in mine], min,
         lambda v: v >= 0.95),
        ("pauses per session", "<= 1 on average", [m["pauses_per_session"] for m in mine], max,
         None),
    ]
    for label, target, values, worst_of, ok in rows:
        worst = worst_of(values)
        met = (statistics.mean(values) <= 1.0) if ok is None else ok(worst)
        print(f"| {label} | {target} | {statistics.median(values):g} | {worst:g} | "
              f"{'yes' if met else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
