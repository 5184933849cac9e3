"""`io7-sim`: run a day of a car park in virtual time, measure it, compare policies.

  io7-sim run SCENARIO [--policy P] [--json] [--plot out.png]
  io7-sim compare SCENARIO [--json]
  io7-sim generate --seed N [--chargers N] [--fuse-a A] [-o file.toml]
  io7-sim run SITE --sessions log.csv [--day YYYY-MM-DD] [--timezone ZONE]
          [--ignore-stations] [--fuse-a A] [--add-sockets N]

SCENARIO is a scenario file (deploy/scenarios/*.toml) or `random:SEED` for a generated
office day (6 io7 Doubles, 12 sockets, on 3 x 63 A behind a 30 A-peak office; use
`generate` for other sizes). `--sessions` replays a back office's session log on the
site (master.sim.sessionlog, master.sim.replay); `--fuse-a` and `--add-sockets` ask what
if. Exit status 2 for a scenario or session log that cannot be read (the message names
the file and key, or row and column).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from master.sim.controllers import POLICIES
from master.sim.generator import random_day, to_toml
from master.sim.kpi import measures
from master.sim.possible import PossibleError, energy_possible
from master.sim.replay import Options, Replay, prepare
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
    ("first_offer_median_s", "first offer, median (s)"),
    ("first_offer_p90_s", "first offer, p90 (s)"),
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


def run_one(spec: str, policy: str, plot: str | None = None,
            options: Options | None = None) -> dict[str, Any]:
    """Run `spec` under `policy`; the KPI object (and the figure, if asked). With
    `options`, the what-ifs and the session log replayed (the object's `replay`)."""
    scenario, replay = prepare(scenario_from(spec), options or Options())
    run: RunResult = simulate(scenario, policy)
    if plot:
        from master.sim.plot import plot_run  # noqa: PLC0415 (matplotlib only when asked)

        plot_run(run, f"{scenario.name}: {scenario.description} ({policy})", Path(plot))
    result = measures(scenario, run, energy_possible(scenario))
    if replay is not None:
        result["replay"] = replay_result(replay, run)
    return result


def replay_result(replay: Replay, run: RunResult) -> dict[str, Any]:
    """The replay's summary and, per row of the log, what its car wanted and received."""
    rows = {(p.arrival.at_s, p.arrival.charger_id, p.arrival.connector_id): p
            for p in replay.placed}
    per_row: list[dict[str, Any]] = []
    for x in run.sessions:
        a = x.arrival
        p = rows[(a.at_s, a.charger_id, a.connector_id)]
        per_row.append({"row": p.row, "station": a.charger_id, "connector": a.connector_id,
                        "waited_min": round(p.waited_s / 60.0, 1),
                        "wanted_kwh": round(a.wanted_wh / 1000.0, 2),
                        "delivered_kwh": round(x.delivered_wh / 1000.0, 2)})
    per_row.sort(key=lambda r: r["row"])
    return {**replay.summary(), "sessions": per_row}


def replay_lines(results: list[dict[str, Any]]) -> list[str]:
    """The replay in words, under the KPI table (one "got all" line per policy)."""
    r = results[0]["replay"]
    away, cut = r["turned_away_rows"], r["cut_at_end_rows"]
    lines = [f"replay of {r['file']}{' (' + r['day'] + ')' if r['day'] else ''}: "
             f"{r['rows']} rows, {r['replayed']} replayed"
             + (f", {r['other_days']} on other days left out" if r["other_days"] else "")
             + f"; {r['waited']} waited for a socket"
             + (f" (median {r['median_wait_min']:g} min)" if r["waited"] else "")
             + f"; {len(away)} turned away" + (f" ({_rows(away)})" if away else "")
             + (f"; {len(cut)} cut at the site's end ({_rows(cut)})" if cut else "")]
    for result in results:
        done = result["replay"]["sessions"]
        short = [s for s in done if s["delivered_kwh"] < 0.99 * s["wanted_kwh"]]
        lines.append((f"{result['policy']}: " if len(results) > 1 else "")
                     + f"got all they wanted: {len(done) - len(short)} of {len(done)} "
                     f"sessions" + ("; short: " + ", ".join(
                         f"row {s['row']} {s['delivered_kwh']:g} of {s['wanted_kwh']:g} kWh"
                         for s in short[:6]) + (", ..." if len(short) > 6 else "")
                         if short else ""))
    if r["ignored_columns"]:
        lines.append(f"columns ignored: {', '.join(r['ignored_columns'])}")
    return lines


def _rows(rows: list[int]) -> str:
    """"row 8" or "rows 9, 10" (the first eight)."""
    listed = ", ".join(map(str, rows[:8])) + (", ..." if len(rows) > 8 else "")
    return f"row{'s' if len(rows) > 1 else ''} {listed}"


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


def compare(spec: str, workers: int = 3, options: Options | None = None
            ) -> list[dict[str, Any]]:
    """The project and both baselines on the same day, in parallel processes."""
    n = len(POLICIES)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_one, [spec] * n, POLICIES, [None] * n, [options] * n))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from exc


def _replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sessions", metavar="LOG.csv",
                   help="replay this session log on the site (README: columns)")
    p.add_argument("--day", type=_day, help="the day of a longer log to replay")
    p.add_argument("--timezone", metavar="ZONE",
                   help="the site's local time zone for times with a UTC offset")
    p.add_argument("--ignore-stations", action="store_true",
                   help="put every session on a free socket, whatever its station")
    p.add_argument("--fuse-a", type=float, help="what if the main fuse were A per phase")
    p.add_argument("--add-sockets", type=int, default=0, metavar="N",
                   help="what if the site had N sockets more")


def _options(args: argparse.Namespace) -> Options:
    return Options(sessions=args.sessions, day=args.day, timezone=args.timezone,
                   ignore_stations=args.ignore_stations, fuse_a=args.fuse_a,
                   add_sockets=args.add_sockets)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7-sim", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run one scenario under one policy")
    run_p.add_argument("scenario")
    run_p.add_argument("--policy", choices=POLICIES, default="project")
    run_p.add_argument("--json", action="store_true", help="print the KPI object as JSON")
    run_p.add_argument("--plot", metavar="OUT.png", help="draw currents and offers")
    _replay_arguments(run_p)
    cmp_p = sub.add_parser("compare", help="the project and both baselines side by side")
    cmp_p.add_argument("scenario")
    cmp_p.add_argument("--json", action="store_true")
    _replay_arguments(cmp_p)
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
        options = _options(args)
        prepare(scenario_from(args.scenario), options)  # a bad file fails here, at once
        if args.command == "run":
            result = run_one(args.scenario, args.policy, args.plot, options)
            results = [result]
            print(json.dumps(result) if args.json else table(results))
        else:
            results = compare(args.scenario, options=options)
            print(json.dumps(results) if args.json else table(results))
        if not args.json and "replay" in results[0]:
            print("\n" + "\n".join(replay_lines(results)))
        return 0
    except ScenarioError as exc:
        print(f"io7-sim: {exc}", file=sys.stderr)
        return 2
    except PossibleError as exc:
        print(f"io7-sim: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
