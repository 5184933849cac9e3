"""Issue 13 §4: a whole group under random crashes, restarts, partitions and slow links.

1000 seeded schedules (tests.election.groupmodel: 3-9 members, real PySyncObj Raft in
virtual time, the leader lease, GroupControl, the agents' LimitApplier, EVs that follow
after a delay), spread over two processes. Every check point verifies that on every phase
the sum of what every socket may draw stays within the limit and that no agent obeys an
older term than it has; once healed, one member leads with a confirmed lease. A failure
names its seed and the command that replays it. IO7_MODEL_SCHEDULES changes the count
(e.g. 20000 for a long hunt), IO7_MODEL_FIRST the first seed.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from tests.election.groupmodel import InvariantBroken, run_seed

# Schedules that once broke something, kept whatever the random range covers:
# 32: a follower with a diverged tail never caught up (flow.py); 198: a restart of a live
# member in the model itself (two overlapping crash faults).
REGRESSION_SEEDS = (32, 198)


SCHEDULE_S = 24.0  # the random ones (suite time); the regression seeds keep their 30 s


def _run(seeds: range) -> tuple[int, list[str], list[float]]:
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


@pytest.mark.parametrize("seed", REGRESSION_SEEDS)
def test_schedules_that_once_failed(seed: int) -> None:
    out = run_seed(seed)
    assert out.checks > 300


def test_a_thousand_random_schedules_keep_every_phase_within_its_limit() -> None:
    count = int(os.environ.get("IO7_MODEL_SCHEDULES", "1000"))
    first = int(os.environ.get("IO7_MODEL_FIRST", "1"))
    half = first + count // 2
    # spawn, not fork: the suite's earlier tests leave gRPC's threads and state in this
    # process, and a forked child that garbage-collects them crashes (seen: SIGSEGV)
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_run, (range(first, half), range(half, first + count))))
    failures = [f for _, fs, _ in parts for f in fs]
    assert not failures, f"{len(failures)} of {count} schedules failed:\n" + "\n".join(failures[:5])
    takeovers = sorted(t for _, _, ts in parts for t in ts)
    assert sum(c for c, _, _ in parts) > 240 * count  # every schedule was checked throughout
    assert takeovers, "no schedule killed a leader: the fuzzer lost its point"
    # a new master holds limits within seconds of its predecessor's death (issue: 5 s)
    assert takeovers[len(takeovers) // 2] < 5.0
