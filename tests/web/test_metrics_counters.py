"""The counters /metrics needs that the cycle keeps: lease expiries (the agent's limit
applier), cycle durations and CT read errors (master/cyclestats.py), with worked numbers."""

from __future__ import annotations

import asyncio
import math
import socket
from pathlib import Path

import pytest

from agent.limits import LimitApplier, MasterLimits
from master.config import _parse as parse_master
from master.cyclestats import CycleStats
from master.service import Master


def limits(cycle: int, valid_for_s: float = 3.0) -> MasterLimits:
    return MasterLimits(term=1, cycle=cycle, valid_for_s=valid_for_s, failsafe_current_a=0.0,
                        currents_a={1: 16.0})


def test_a_lease_that_runs_out_counts_once_until_renewed() -> None:
    a = LimitApplier(connector_ids=(1,), charger_limit_a=32.0, hard_max_a={1: 32.0})
    assert a.lease_expiries(0.0) == 0  # no lease yet: nothing ran out
    assert a.on_limits(limits(1), now_s=0.0)  # lease until 3.0
    assert a.on_limits(limits(2), now_s=1.0)  # renewed in time: until 4.0
    assert a.lease_expiries(3.9) == 0
    assert a.lease_expiries(4.0) == 1  # ran out at 4.0 (lease_ok is False from 4.0)
    assert a.lease_expiries(9.0) == 1  # still the same expiry
    assert a.on_limits(limits(3), now_s=10.0)  # back: the expiry stays counted
    assert a.lease_expiries(10.0) == 1
    assert a.on_limits(limits(4), now_s=14.0)  # 14.0 >= 13.0: a second one ran out
    assert a.lease_expiries(14.0) == 2
    assert a.lease_expiries(16.9) == 2 and a.lease_expiries(17.0) == 3


def test_the_cycle_histogram_is_cumulative_with_sum_and_count() -> None:
    s = CycleStats(buckets_s=(0.01, 0.1, 1.0))
    for took in (0.004, 0.01, 0.05, 0.3, 2.0, math.nan, -1.0):
        s.cycle(took)
    # 0.004, 0.01 and the two bad ones (as 0 s) <= 0.01; 0.05 <= 0.1; 0.3 <= 1; 2.0 above
    assert s.bucket_counts == [4, 5, 6]
    assert s.count == 7
    assert s.sum_s == pytest.approx(0.004 + 0.01 + 0.05 + 0.3 + 2.0)
    s.ct_error()
    s.ct_error()
    assert s.ct_read_errors == 2


def test_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        CycleStats(buckets_s=(0.1, 0.01))


def test_the_master_counts_its_cycles_and_failed_ct_reads(tmp_path: Path) -> None:
    """A real Master whose CT kit (Modbus TCP) answers nobody: each cycle is timed and
    each failed read counted (master/service.py feeds master.stats)."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = parse_master(tmp_path / "master.toml", {
        "master": {"id": "io7-01", "listen": "127.0.0.1:0",
                   "state_db": str(tmp_path / "master.sqlite3")},
        "group": {"name": "garage", "limit_a": 32, "mode": "dynamic",
                  "fallback_limit_a": 16},
        "ct": {"enabled": True, "rated_a": 100, "timeout_s": 0.2, "retries": 0,
               "clamps": {"1": "L1", "2": "L2", "3": "L3"},
               "tcp": {"host": "127.0.0.1", "port": port}},
        "tls": {"plaintext": True}})

    async def run() -> CycleStats:
        master = Master(config)
        try:
            for _ in range(2):
                await master.run_cycle()
            return master.stats
        finally:
            master.close()

    stats = asyncio.run(run())
    assert (stats.count, stats.ct_read_errors) == (2, 2)
    assert stats.sum_s > 0
