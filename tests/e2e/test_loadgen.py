"""The cluster benchmark's own machinery, kept from rotting: the load generator connects
five protocol-level chargers to a real master (with a real CT kit simulator) and they
receive sane Limits, over mutual TLS and plaintext, and reconnect after a master restart;
the bench's analysis runs on what they got. No timing is asserted
(`make bench` prints those numbers); every wait has a generous bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.bench import cluster, memory, storm
from tests.bench.fleet import shares
from tests.bench.loadgen import CHARGER_LIMIT_A, MIN_CURRENT_A, WIRINGS

pytestmark = pytest.mark.e2e

CHARGERS = 5


@pytest.mark.parametrize(("tls", "processes"), [(True, 1), (False, 1), (True, 2)],
                         ids=["mutual-tls", "plaintext", "mutual-tls-two-processes"])
def test_five_chargers_receive_sane_limits_from_a_real_master(tmp_path: Path, tls: bool,
                                                                processes: int) -> None:
    # 250 ms cycles and a short hold keep it to a few seconds; the step still comes.
    # Plaintext: the master's switch and insecure channels (the TLS cost bench's baseline).
    # Two processes: the generator split as at 1 000 chargers (tests/bench/fleet.py).
    run = cluster.run_size(tmp_path, CHARGERS, cycles=4, cycle_ms=250, settle_s=0.5, tls=tls,
                           processes=processes)
    gen = run.gen
    assert not gen.errors
    assert gen.welcomed == CHARGERS
    assert sorted(c.charger_id for c in gen.fleet) == [f"bench-{k:04d}"
                                                       for k in range(CHARGERS)]
    assert all(c.welcome is not None and c.welcome.settings.group == cluster.GROUP
               for c in gen.fleet)
    # Every charger holds Limits of this term, for both its connectors, each current
    # 0 or 6 A up to its share of the Charger Current Limit.
    for charger in gen.fleet:
        last = charger.last
        assert last is not None and last.term >= 1 and last.valid_for_ms > 0
        assert sorted(c.connector_id for c in last.connectors) == sorted(WIRINGS)
        for c in last.connectors:
            assert c.current_a == 0.0 or MIN_CURRENT_A <= c.current_a <= CHARGER_LIMIT_A / 2
            assert c.reason != pb.LIMIT_REASON_UNSPECIFIED
    # Past the hold the chargers were given current, and after every cycle what they all
    # hold fits every phase with the other loads the master read in that cycle.
    assert len(gen.holdings(run.window[0])) == CHARGERS
    assert any(sum(cluster.phase_sums_a(gen, k)) > 0 for k in run.window)
    for k in sorted(gen.received):
        assert k in run.log, f"cycle {k} missing from the master's debug log"
        if len(gen.holdings(k)) == CHARGERS:
            assert cluster.fits(run, k, run.log[k].ct_a), f"cycle {k} overloads a phase"
    # The analysis runs on it and finds the load step in the master's CT readings.
    result = cluster.summarise(run)
    assert result.chargers == CHARGERS and result.samples >= 4 and result.tls == tls
    assert 1 <= result.sent_median <= CHARGERS
    assert result.latency_median_ms > 0 and result.cpu_core >= 0
    assert len(result.generator_cpu_cores) == processes and result.generator_lag_max_ms >= 0
    assert result.master_rss_mb > 0 and result.status_bytes and not result.status_error
    assert any(e.ct_a[0] is not None and e.ct_a[0] >= cluster.BASE_A + cluster.STEP_A - 0.5
               for e in run.log.values())


def test_chargers_reconnect_after_the_master_is_killed_and_restarted(tmp_path: Path) -> None:
    # The handshake storm's plumbing at three chargers over mutual TLS: the master dies
    # (SIGKILL), a new one starts on the same address and state, and every charger
    # reconnects with the agent's backoff and receives Limits of the new term.
    result = storm.measure_storm(tmp_path, 3, tls=True, timeout_s=60.0)
    assert result.tls and result.chargers == 3
    assert 0 < result.listening_s <= result.welcomed_s <= result.limits_s
    assert result.attempts >= 3  # at least one new stream each
    assert result.master_cpu_core > 0 and result.generator_cpu_core >= 0


def test_the_fleet_is_split_in_contiguous_shares_differing_by_at_most_one() -> None:
    assert shares(1000, 2) == [(0, 500), (500, 500)]
    assert shares(5, 2) == [(0, 2), (2, 3)]
    assert shares(3, 3) == [(0, 1), (1, 1), (2, 1)]
    with pytest.raises(ValueError, match="processes=4"):
        shares(3, 4)


def test_importtime_self_time_is_summed_by_package_and_blamed_on_the_io7_importer() -> None:
    text = """import time: self [us] | cumulative | imported package
import time:         7 |          7 |   structlog
import time:       100 |        100 |       numpy.core
import time:        50 |        150 |     numpy
import time:        10 |        160 |   master.allocation
import time:        20 |         20 |     grpc
import time:         5 |         25 |   agent.link
import time:         1 |        186 | master
"""
    tree = memory.parse_importtime(text)
    assert tree.self_ms == pytest.approx({"numpy": 0.15, "master": 0.011, "grpc": 0.02,
                                          "agent": 0.005, "structlog": 0.007})
    assert tree.first_by == {"numpy": "master.allocation", "grpc": "agent.link"}
