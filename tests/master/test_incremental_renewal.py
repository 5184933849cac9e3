"""Limits are sent when they change or their lease is due, and no lease lapses for it
(issue 15; master/renewal.py).

A real `master.service.Master` (virtual clock, no server) with the load generator's
chargers, whose Limits are delivered from the master's outboxes to the agent's own limit
applier (agent.limits.LimitApplier, the code that counts the lease on a charger) after a
random delay, with cycles that start late now and then. Throughout a randomised run:
every agent's lease stays valid, after each delivery every agent holds this cycle's
values (never a stale one), and fewer Limits are sent than a send-every-cycle master
would send.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from agent.limits import LimitApplier, MasterLimits
from master import wire
from master.allocation import Phase, Reason
from master.config import load_master_config
from master.renewal import LimitsLedger
from master.service import Master
from master.statusview import ConnectorLimit
from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.bench.loadgen import FakeCharger
from tests.master.cyclecost import TOML


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def applier() -> LimitApplier:
    return LimitApplier((1, 2), charger_limit_a=63.0, hard_max_a={1: 32.0, 2: 32.0},
                        increase_interval_s=0.0)


def deliver(agent: LimitApplier, msg: pb.MasterMessage, at_s: float) -> None:
    lim = msg.limits
    assert agent.on_limits(MasterLimits(
        term=lim.term, cycle=lim.cycle, valid_for_s=lim.valid_for_ms / 1000,
        failsafe_current_a=lim.failsafe_current_a,
        currents_a={c.connector_id: c.current_a for c in lim.connectors}), at_s)


async def run(tmp: Path, seed: int, cycles: int) -> tuple[int, int]:
    """The randomised run; returns (Limits sent, agent-cycles)."""
    rng = random.Random(seed)
    path = tmp / "master.toml"
    path.write_text(TOML.format(limit_a=100.0, fallback_a=50.0))
    clock = Clock()
    master = Master(load_master_config(path), clock=clock)
    master.ct = None
    fleet = [FakeCharger(f"c{k}", "garage") for k in range(4)]
    agents = {c.charger_id: applier() for c in fleet}
    for c in fleet:
        master.control.member_connected(wire.member_from_hello(c.hello()), clock.now)
        master.outbox[c.charger_id] = asyncio.Queue(maxsize=4)
    sent = offered = 0
    ct = 20.0
    try:
        for _ in range(cycles):
            # a cycle a second, some a little late (the ledger renews early enough)
            clock.now += 1.0 + (rng.uniform(0.0, 0.3) if rng.random() < 0.3 else 0.0)
            for c in fleet:
                if c.last is not None:  # the agent has a lease now and until the next
                    assert agents[c.charger_id].lease_ok(clock.now), c.charger_id
                master.control.report(wire.report_from_state(c.state(clock.now, 1.0),
                                                             clock.now))
            if rng.random() < 0.3:  # the building's load moves: the limits change
                ct = rng.choice((5.0, 20.0, 40.0, 60.0))
            master.control.ct_sample({p: ct for p in Phase}, clock.now)
            result = await master.run_cycle()
            for c in fleet:
                box, agent = master.outbox[c.charger_id], agents[c.charger_id]
                offered += 1
                while not box.empty():
                    msg = box.get_nowait()
                    at = clock.now + rng.uniform(0.0, 0.2)  # the LAN and the agent's loop
                    if c.last is not None:
                        assert agent.lease_ok(at), f"{c.charger_id} lapsed before {at}"
                    deliver(agent, msg, at)
                    c.last, c.last_at_s = msg.limits, at
                    sent += 1
                want = {lim.connector_id: lim.current_a for lim in result.limits[c.charger_id]}
                got = {cid: d.target_a for cid, d in agent.offered(clock.now + 0.2).items()}
                assert got == want, "an agent holds other values than this cycle's"
    finally:
        master.close()
    return sent, offered


@pytest.mark.parametrize("seed", range(6))
def test_unchanged_limits_are_renewed_before_the_lease_ends(tmp_path: Path,
                                                            seed: int) -> None:
    sent, offered = asyncio.run(run(tmp_path, seed, cycles=80))
    assert sent < 0.8 * offered  # skipping happened


def test_a_new_stream_and_a_dropped_limits_are_sent_at_the_next_cycle() -> None:
    ledger = LimitsLedger(cycle_s=1.0)
    lims = (ConnectorLimit(connector_id=1, current_a=16.0, reason=Reason.PHASE_LIMIT),)
    kw: dict[str, Any] = {"term": 3, "failsafe_a": 0.0, "limits": lims}
    assert ledger.due("a", now_s=0.0, **kw)
    ledger.queued("a", now_s=0.0, lease_s=3.0, **kw)
    assert not ledger.due("a", now_s=1.0, **kw)  # unchanged, 2 s of lease left
    assert ledger.due("a", now_s=1.0, **{**kw, "term": 4})
    assert ledger.due("a", now_s=1.0, **{**kw, "failsafe_a": 6.0})
    assert ledger.due("a", now_s=1.0, **{**kw, "limits": (ConnectorLimit(
        connector_id=1, current_a=15.9, reason=Reason.PHASE_LIMIT),)})
    assert ledger.due("a", now_s=1.2, **kw)  # a late cycle: renew now, not at 2.2
    assert ledger.due("a", now_s=2.0, **kw)  # one cycle of lease left: renew
    ledger.shortened("a", 1.5)  # an elected master's recap
    assert ledger.due("a", now_s=0.5, **kw)
    ledger.queued("a", now_s=0.0, lease_s=3.0, **kw)
    ledger.forget("a")  # dropped by the stream, or a new stream
    assert ledger.due("a", now_s=0.5, **kw)
