"""The bench's count of Limits sent per cycle (issue 15, tests/bench/cluster.py rule 1).

A master that renews unchanged Limits every 2nd cycle (master/renewal.py) logs N, 0, N,
0, ...: the bench used to show only the median of the sending cycles (N), which read as
"every agent is sent Limits every cycle". The summary also counts the silent cycles.
"""

from __future__ import annotations

from tests.bench.cluster import MasterCycle, SizeRun, summarise
from tests.bench.fleet import Receipts
from tests.bench.loadgen import Arrival, FakeCharger

CHARGERS = 4


def run_alternating(cycles: int) -> SizeRun:
    """A window of `cycles` cycles past the hold, all Limits renewed in the odd ones."""
    fleet = [FakeCharger(f"bench-{k:04d}", "bench") for k in range(CHARGERS)]
    log, received = {}, {}
    for k in range(1, cycles + 1):
        sent = CHARGERS if k % 2 else 0
        log[k] = MasterCycle(cycle=k, ct_sampled_at_s=float(k), issued_at_s=k + 0.01,
                             took_ms=10.0, ct_a=(40.0, 40.0, 40.0), limits_sent=sent)
        if sent:
            received[k] = {c.charger_id: Arrival(k + 0.02, {1: 12.0, 2: 12.0}, False)
                           for c in fleet}
    gen = Receipts(chargers=CHARGERS, fleet=fleet, received=received, errors={},
                   lag=[[(1.5, 1.0)]])
    return SizeRun(gen=gen, log=log, limit_a=138.0, window=list(log), cpu_s=1.0,
                   wall_s=float(cycles), rss_mb=100.0, overruns=0, status_bytes=1,
                   status_error="", loadavg=0.0, tls=True, generator_cpu_s=(0.5,),
                   window_at_s=(1.0, float(cycles)))


def test_silent_renewal_cycles_count_in_the_mean_of_limits_sent() -> None:
    result = summarise(run_alternating(10))
    assert result.samples == 5 and result.sent_median == CHARGERS  # sending cycles only
    assert result.sampled_cycles == 10
    assert result.sent_mean == CHARGERS / 2
