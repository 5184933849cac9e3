"""An agent joins and rejoins its master through a slow link (issue 10).

A real master and a real agent, each in its own network namespace, joined by a veth pair
with a private /30 that exists only inside the two namespaces. The agent reaches the master
through tests/netrelay.py running in the agent's namespace, which delays every chunk by
D ms each way (this kernel has no netem qdisc) and can cut the connection.

Before the fix, an agent never joined through 100 ms each way or 300 ms one way: gRPC
gave each connection attempt `grpc.min_reconnect_backoff_ms` = 200 ms (protos/link.py,
rule 4) for two round trips. The bounds below are generous (the machine is shared); the
measured times are in the issue note.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import PY, Cluster, Proc, agent_toml, cluster, master_toml, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
JOIN_BOUND_S = 10.0  # generous: a join takes about 1 s at 300 ms one way (issue note)
MASTER_IP, AGENT_IP = "10.207.0.1", "10.207.0.2"  # a /30 inside the namespaces only
MASTER_PORT = 50051


@dataclass(frozen=True)
class Netns:
    master: str
    agent: str

    def run(self, ns: str, *cmd: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True)


def _ip(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], capture_output=True, check=False)


@pytest.fixture
def netns() -> Iterator[Netns]:
    """Two namespaces joined by a veth pair; removed afterwards (with their veth ends)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 (ip netns) for the two network namespaces")
    tag = f"{os.getpid() % 100000}"
    ns = Netns(master=f"io7m-{tag}", agent=f"io7a-{tag}")
    made: list[str] = []
    try:
        for name in (ns.master, ns.agent):
            done = _ip("netns", "add", name)
            if done.returncode != 0:
                pytest.skip(f"ip netns add failed: {done.stderr.decode().strip()}")
            made.append(name)
        veth_m, veth_a = f"io7m{tag}", f"io7a{tag}"
        steps = [
            ["link", "add", veth_m, "netns", ns.master, "type", "veth", "peer", "name", veth_a,
             "netns", ns.agent],
            ["-n", ns.master, "addr", "add", f"{MASTER_IP}/30", "dev", veth_m],
            ["-n", ns.agent, "addr", "add", f"{AGENT_IP}/30", "dev", veth_a],
            ["-n", ns.master, "link", "set", veth_m, "up"],
            ["-n", ns.agent, "link", "set", veth_a, "up"],
            ["-n", ns.master, "link", "set", "lo", "up"],
            ["-n", ns.agent, "link", "set", "lo", "up"],
        ]
        for step in steps:
            done = _ip(*step)
            if done.returncode != 0:
                pytest.skip(f"ip {' '.join(step)} failed: {done.stderr.decode().strip()}")
        yield ns
    finally:
        for name in made:
            _ip("netns", "del", name)


def spawn_in(c: Cluster, ns: str, name: str, *args: str, stdin: int | None = None) -> Proc:
    """Like Cluster.spawn, inside network namespace `ns`; stopped with the cluster."""
    out, err = c.tmp / f"{name}.out", c.tmp / f"{name}.err"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    popen = subprocess.Popen(["ip", "netns", "exec", ns, PY, *args], cwd=c.tmp,
                             stdout=out.open("wb"), stderr=err.open("wb"), env=env,
                             stdin=stdin)
    proc = Proc(name, popen, out, err)
    c.procs.append(proc)
    return proc


def stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def first_master_offer_s(agent: Proc) -> float | None:
    """Seconds from the agent's start to its first offer under a master's lease."""
    started = agent.events("agent started")
    offers = [e for e in agent.events("offer") if e["lease_ok"]]
    if not started or not offers:
        return None
    return stamp(offers[0]) - stamp(started[0])


@pytest.mark.parametrize(("up_ms", "down_ms"), [(100, 100), (300, 0), (0, 300)],
                         ids=["100ms-each-way", "300ms-up", "300ms-down"])
def test_an_agent_joins_and_rejoins_through_a_slow_link(
        tmp_path: Path, netns: Netns, up_ms: int, down_ms: int) -> None:
    with cluster(tmp_path) as c:
        (tmp_path / "master.toml").write_text(master_toml(limit_a=64))
        master = spawn_in(c, netns.master, "master", "-m", "master.service", "--config",
                          "master.toml", "--listen", f"{MASTER_IP}:{MASTER_PORT}")
        master.first_json()
        relay = spawn_in(c, netns.agent, "relay", "-m", "tests.netrelay", "--listen",
                         "127.0.0.1:0", "--target", f"{MASTER_IP}:{MASTER_PORT}",
                         "--up-ms", str(up_ms), "--down-ms", str(down_ms),
                         stdin=subprocess.PIPE)
        via = str(relay.first_json()["listening"])
        (tmp_path / "io7-1.toml").write_text(agent_toml(
            "io7-1", master=via, connectors='[connectors.1]\nwiring = ["L1"]'))
        agent = spawn_in(c, netns.agent, "io7-1", "-m", "agent.service", "--config",
                         "io7-1.toml")
        agent.first_json()

        wait_for(lambda: first_master_offer_s(agent) is not None,
                 "the agent's first offer under the master's lease", timeout_s=JOIN_BOUND_S)
        joined_s = first_master_offer_s(agent)
        assert joined_s is not None and joined_s < JOIN_BOUND_S
        # The stream survives the link: keepalive (1 s ping) does not kill it.
        time.sleep(3.0)
        assert agent.events("master link lost") == []
        assert len(agent.events("joined group")) == 1

        assert relay.popen.stdin is not None
        relay.popen.stdin.write(b"cut\n")
        relay.popen.stdin.flush()
        rejoin_s = wait_for(lambda: len(agent.events("joined group")) == 2,
                            "a rejoin after the cut", timeout_s=JOIN_BOUND_S)
        assert agent.events("master link lost"), "the cut was seen"
        wait_for(lambda: agent.events("offer")[-1]["lease_ok"] is True,
                 "a lease after the rejoin", timeout_s=JOIN_BOUND_S)
        print(json.dumps({"up_ms": up_ms, "down_ms": down_ms, "first_limits_s": joined_s,
                          "rejoin_s": rejoin_s}))
