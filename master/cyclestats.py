"""The master's running counters for /metrics (issue 14 §3): cycle durations and CT read
errors. Pure: the shell (master/service.py) calls `cycle` and `ct_error`; the metrics view
(master/metricsview.py) reads them at scrape time, so nothing is formatted per cycle.

1. Durations are kept as cumulative bucket counts (Prometheus histogram semantics: each
   bucket counts the cycles that took at most its bound), their sum and their count.
2. Counters only grow, for the life of one master (one term on this charger); a new
   master starts them at 0 again, which Prometheus' rate() reads as a counter reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Upper bounds, s. A cycle polls the CT kit (Modbus timeout <= 0.5 s, architecture.md
# "time and rates") and runs the allocation (~1 ms, tests/bench): 1 ms to the 1 s cycle.
CYCLE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass(slots=True)
class CycleStats:
    """Cycle duration histogram (rule 1) and CT read errors, since this master started."""

    buckets_s: tuple[float, ...] = CYCLE_BUCKETS_S
    bucket_counts: list[int] = field(default_factory=list)  # cumulative, one per bound
    count: int = 0
    sum_s: float = 0.0
    ct_read_errors: int = 0

    def __post_init__(self) -> None:
        if list(self.buckets_s) != sorted(set(self.buckets_s)) or not self.buckets_s:
            raise ValueError(f"buckets must be increasing, got {self.buckets_s}")
        if not self.bucket_counts:
            self.bucket_counts = [0] * len(self.buckets_s)

    def cycle(self, took_s: float) -> None:
        """Count one cycle that took `took_s` seconds (a NaN or negative one counts as 0 s:
        a clock oddity must not break the cycle)."""
        took = took_s if math.isfinite(took_s) and took_s > 0 else 0.0
        self.count += 1
        self.sum_s += took
        for i, bound in enumerate(self.buckets_s):
            if took <= bound:
                self.bucket_counts[i] += 1

    def ct_error(self) -> None:
        """Count one failed or refused CT kit read."""
        self.ct_read_errors += 1
