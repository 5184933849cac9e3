"""One real agent against the bench's master (tests/bench/cluster.py rules 4 and 5): its
resident memory while both connectors charge, and its start-up, from spawn to its first
offer from the master (the wall-clock timestamp of its "offer" log line)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from tests.bench.cluster import BASE_A, GROUP, group_limit_a, rss_mb, start_master
from tests.e2e.harness import Cluster, Proc, free_port, operator_dir, tls_channel


@dataclass(frozen=True, slots=True)
class AgentResult:
    """Per run: spawn to the agent's "agent started" line (process start, imports,
    config) and to its first offer from the master (s); its RSS while charging (MB)."""

    started_s: tuple[float, ...]
    startup_s: tuple[float, ...]
    rss_mb: tuple[float, ...]


def _wait(check: Callable[[], object], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout_s} s: {what}")
        time.sleep(0.02)


def _charging(address: str, charger_id: str) -> bool:
    """Whether the master sees both of the charger's connectors charging."""
    async def ask() -> bool:
        async with tls_channel(address, operator_dir()) as channel:
            admin = pb_grpc.GroupAdminStub(channel)  # type: ignore[no-untyped-call]
            status = await admin.GetStatus(pb.GetStatusRequest(), timeout=5)
        member = next((m for m in status.members if m.charger_id == charger_id), None)
        return member is not None and len(member.connectors) == 2 and all(
            cv.status == pb.CONNECTOR_STATUS_CHARGING and cv.measured_a.l1 > 1.0
            for cv in member.connectors)
    return asyncio.run(ask())


def _first(proc: Proc, event: str, **fields: str) -> dict[str, Any] | None:
    return next((e for e in proc.events(event)
                 if all(e.get(k) == v for k, v in fields.items())), None)


def _wall_s(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


def measure_agent(tmp: Path, *, runs: int = 3) -> AgentResult:
    """Rules 4 and 5: `runs` real agents, one after the other, against one master past
    its start-of-term hold (shortened to lease + 0.5 s: it is not what is measured)."""
    tmp.mkdir(parents=True, exist_ok=True)
    c = Cluster(tmp)
    started, startups, rss = [], [], []
    try:
        ct_port = free_port()
        c.ct_sim(ct_port, base_a=BASE_A, step_a=0.0)
        master, address = start_master(c, limit_a=group_limit_a(runs), ct_port=ct_port,
                                       settle_s=0.5)
        _wait(lambda: len(master.events("cycle")) >= 5, "master past its hold (3.5 s)", 30)
        for run in range(runs):
            cid = f"io7-agent-{run + 1}"
            spawned = time.time()
            agent = c.agent(cid, master=address, group=GROUP)
            _wait(functools.partial(_first, agent, "offer", source="master"),
                  f"{cid}: first offer from the master", 30)
            offer = _first(agent, "offer", source="master")
            hello = _first(agent, "agent started")
            assert offer is not None and hello is not None
            started.append(_wall_s(hello) - spawned)
            startups.append(_wall_s(offer) - spawned)
            _wait(functools.partial(_charging, address, cid),
                  f"{cid}: both connectors charging", 30)
            time.sleep(1.0)  # a few steps of charging
            rss.append(rss_mb(agent.popen.pid))
            agent.stop()
    finally:
        c.close()
    return AgentResult(tuple(started), tuple(startups), tuple(rss))
