"""Issue 13 §4: a whole group under random crashes, restarts, partitions and slow links.

Seeded schedules (tests.election.groupmodel: 3-9 members, real PySyncObj Raft in
virtual time, the leader lease, GroupControl, the agents' LimitApplier, EVs that follow
after a delay), spread over two processes. Every check point verifies that on every phase
the sum of what every socket may draw stays within the limit and that no agent obeys an
older term than it has; once healed, one member leads with a confirmed lease. A failure
names its seed and the command that replays it.

The suite runs seeds 1-250 and COVERAGE_SEEDS (about 30 s on two cores); `make soak` runs
the 1000 the suite ran before (IO7_MODEL_SCHEDULES=1000, about two minutes).
IO7_MODEL_SCHEDULES changes the count (e.g. 20000 for a long hunt), IO7_MODEL_FIRST the
first seed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from tests.election.groupmodel import InvariantBroken, make_schedule, run_seed

# Schedules that once broke something, kept whatever the random range covers:
# 32: a follower with a diverged tail never caught up (flow.py); 198: a restart of a live
# member in the model itself (two overlapping crash faults).
REGRESSION_SEEDS = (32, 198)
# Seeds 1-1000 hold 108 kinds of schedule (by member count, offline strategy, the set of
# fault kinds and each with the strategy, a crash of the CT holder for good or not,
# overlapping faults, a partition of the CT holder); seeds 1-250 hold all but four. The
# first of each of those four, so the suite still runs every kind: 260 (4 members,
# Maximise: slow, cut and two partitions), 265 (9 members, Zero: cut, partition, crash),
# 286 (Maximise: a cut link alone), 306 (Minimise: slow links alone).
COVERAGE_SEEDS = (260, 265, 286, 306)
SUITE_SCHEDULES = 250  # `make soak`: 1000


SCHEDULE_S = 24.0  # the random ones (suite time); the regression seeds keep their 30 s


def _run(seeds: Sequence[int]) -> tuple[int, list[str], list[float]]:
    failures, takeovers, checks = [], [], 0
    for seed in seeds:
        try:
            out = run_seed(seed, SCHEDULE_S)
        except InvariantBroken as exc:
            failures.append(str(exc))
            continue
        checks += out.checks
        takeovers.extend(out.takeovers_s)
    return checks, failures, takeovers


def schedule_kinds(seed: int) -> set[tuple[object, ...]]:
    """The kinds of schedule `seed` is one of (COVERAGE_SEEDS)."""
    s = make_schedule(seed, duration_s=SCHEDULE_S)
    kinds = frozenset(f.kind for f in s.faults)
    ct_holder = s.ids[0]
    overlap = any(a.at_s < b.at_s < a.at_s + (a.for_s or s.duration_s)
                  for i, a in enumerate(s.faults) for b in s.faults[i + 1:])
    return {("members", len(s.ids)), ("strategy", s.strategy), ("faults", kinds),
            ("members+strategy", len(s.ids), s.strategy), ("faults+strategy", kinds, s.strategy),
            ("ct holder crashes, for good", any(f.kind == "crash" and f.members[0] == ct_holder
                                                for f in s.faults),
             any(f.for_s is None for f in s.faults)),
            ("overlap, faults", overlap, len(s.faults)),
            ("ct holder cut off", any(f.kind == "partition" and ct_holder in f.members
                                      for f in s.faults), s.strategy)}


def test_the_suite_runs_every_kind_of_schedule_the_soak_runs() -> None:
    suite = set().union(*(schedule_kinds(s) for s in (*range(1, SUITE_SCHEDULES + 1),
                                                       *COVERAGE_SEEDS)))
    soak = set().union(*(schedule_kinds(s) for s in range(1, 1001)))
    assert soak <= suite, sorted(map(str, soak - suite))


@pytest.mark.parametrize("seed", REGRESSION_SEEDS)
def test_schedules_that_once_failed(seed: int) -> None:
    out = run_seed(seed)
    assert out.checks > 300


def test_random_schedules_keep_every_phase_within_its_limit() -> None:
    count = int(os.environ.get("IO7_MODEL_SCHEDULES", str(SUITE_SCHEDULES)))
    first = int(os.environ.get("IO7_MODEL_FIRST", "1"))
    seeds = [*range(first, first + count),
             *(s for s in COVERAGE_SEEDS if not first <= s < first + count)]
    count = len(seeds)
    # spawn, not fork: the suite's earlier tests leave gRPC's threads and state in this
    # process, and a forked child that garbage-collects them crashes (seen: SIGSEGV)
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_run, (seeds[0::2], seeds[1::2])))
    failures = [f for _, fs, _ in parts for f in fs]
    assert not failures, f"{len(failures)} of {count} schedules failed:\n" + "\n".join(failures[:5])
    takeovers = sorted(t for _, _, ts in parts for t in ts)
    assert sum(c for c, _, _ in parts) > 240 * count  # every schedule was checked throughout
    assert takeovers, "no schedule killed a leader: the fuzzer lost its point"
    # a new master holds limits within seconds of its predecessor's death (issue: 5 s)
    assert takeovers[len(takeovers) // 2] < 5.0
