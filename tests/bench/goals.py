"""Issue 15's goals table: a thousand chargers on one master at 1 Hz, from the cluster
bench's runs (tests/bench/cluster.py) at 200, 500 and 1 000 chargers.

Per size: CT sample -> every agent holds its Limits (median, p99 by nearest rank over
the sampled cycles), the master's CPU over the same window (/proc utime + stime of the
master process), its resident memory at the end, the cycle interval's max and the
master's "cycle overran" warnings, the load generator's CPU per process and its event
loop's lag, and the 1-minute load average before the run. Each target is met or not;
a row whose generator was busy (a process near a core, or its loop lagging by half the
latency target) says so, since its latency is then partly the generator's.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.bench.cluster import ScaleResult

CYCLE_SLACK_S = 0.1  # "keeps a 1 s cycle": no interval longer than 1.1 s
RSS_AT_MB = 150.0  # master resident memory at 1 000 chargers
GENERATOR_BUSY_CORE = 0.9  # as tests/bench/storm.py: near a core is the generator's limit


@dataclass(frozen=True, slots=True)
class Goal:
    """One row of the issue's table."""

    chargers: int
    p99_ms: float
    cpu_core: float
    rss_mb: float | None  # None: no memory target at this size


GOALS = (Goal(chargers=200, p99_ms=10.0, cpu_core=0.05, rss_mb=None),
         Goal(chargers=500, p99_ms=20.0, cpu_core=0.1, rss_mb=None),
         Goal(chargers=1000, p99_ms=40.0, cpu_core=0.2, rss_mb=RSS_AT_MB))
SIZES = tuple(g.chargers for g in GOALS)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def generator_busy(r: ScaleResult, goal: Goal) -> bool:
    """Whether the generator may be what limits the row (module docstring)."""
    return (max(r.generator_cpu_cores, default=r.generator_cpu_core) >= GENERATOR_BUSY_CORE
            or r.generator_lag_p99_ms >= goal.p99_ms / 2)


def verdicts(r: ScaleResult, goal: Goal) -> dict[str, bool]:
    """Each target of the row: met or not."""
    met = {"p99": r.latency_p99_ms < goal.p99_ms, "CPU": r.cpu_core < goal.cpu_core,
           "1 s cycle": r.overruns == 0 and r.interval_max_s <= 1.0 + CYCLE_SLACK_S}
    if goal.rss_mb is not None:
        met["RSS"] = r.master_rss_mb < goal.rss_mb
    return met


def print_table(results: dict[int, ScaleResult]) -> None:
    """The goals table of the runs in `results` (by size); a size not run says so."""
    print("## Issue 15: a thousand chargers on one master at 1 Hz (mutual TLS, 1 s cycle)")
    print()
    print("| chargers | cycles with a sample of cycles (Limits sent: median per sending "
          "cycle; mean per cycle) | CT sample -> every agent "
          "holds its Limits, median / p99 ms (target p99) | master CPU core (target) | "
          "master RSS MB | cycle interval max s, "
          "overruns | generator: processes, CPU core each, loop lag p99 / max ms | "
          "load avg 1 min | targets met |")
    print("|---:|---:|---|---|---:|---|---|---:|---|")
    for goal in GOALS:
        r = results.get(goal.chargers)
        if r is None:
            print(f"| {goal.chargers} | - | not measured (< {goal.p99_ms:g}) | - "
                  f"(< {goal.cpu_core:g}) | - | - | - | - | **no** |")
            continue
        met = verdicts(r, goal)
        cores = ", ".join(f"{c:.2f}" for c in r.generator_cpu_cores)
        busy = " **busy**" if generator_busy(r, goal) else ""
        rss = "" if goal.rss_mb is None else f" (< {goal.rss_mb:g})"
        print(f"| {goal.chargers} | {r.samples} of {r.sampled_cycles} ({r.sent_median:.0f}; "
              f"{r.sent_mean:.0f}) | "
              f"{r.latency_median_ms:.1f} / "
              f"{r.latency_p99_ms:.1f} (< {goal.p99_ms:g}) | {r.cpu_core:.3f} "
              f"(< {goal.cpu_core:g}) | {r.master_rss_mb:.0f}{rss} | "
              f"{r.interval_max_s:.3f}, {r.overruns} | {len(r.generator_cpu_cores)}: "
              f"{cores}; {r.generator_lag_p99_ms:.1f} / {r.generator_lag_max_ms:.1f}{busy} | "
              f"{r.loadavg:.2f} | "
              f"{', '.join(f'{k} {_yes(ok)}' for k, ok in met.items())} |")
    print()
    print("Latency: per cycle, the last charger's receipt of that cycle's Limits (stamped by "
          "the load generator on arrival, CLOCK_MONOTONIC) minus the CT sample time the "
          "master logs for that cycle; cycles after the start-of-term hold only. A master "
          "that sends only changed or renewed Limits logs how many it sent: a cycle counts "
          "when they all arrived (the rest already hold theirs), cycles sending none have "
          "no sample (unchanged Limits are renewed together every 2nd cycle: the mean "
          "over all cycles is about half the median of the sending ones). Master CPU: "
          "/proc/<pid>/stat utime + stime over the same cycles / their wall time. RSS: VmRSS "
          "at the end. Overruns: the master's 'cycle overran' warnings; the 1 s cycle is "
          f"kept when there are none and no interval exceeds {1.0 + CYCLE_SLACK_S:g} s. The "
          "generator runs in spawned processes, each a share of the chargers on its own TCP "
          "connections; 'busy' marks a process near a core or a loop lagging by half the "
          "latency target (then the latency is partly the generator's). The machine has 2 "
          "shared cores: the load average is the 1-minute one before each run.")
