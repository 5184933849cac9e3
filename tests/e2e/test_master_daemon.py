"""The master daemon's life as real processes on loopback (issue 10): one master per port
and per state folder, a master that lost its state is obeyed again, stream churn leaves no
orphan tasks."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from tests.e2e.harness import (
    GENEROUS_S,
    PY,
    charger_dir,
    cluster,
    free_port,
    last_offers,
    master_toml,
    tls_channel,
    wait_for,
)

pytestmark = pytest.mark.e2e


def write_config(folder: Path, *, limit_a: float = 60) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "master.toml").write_text(master_toml(limit_a=limit_a))


def refused(folder: Path, listen: str) -> subprocess.CompletedProcess[str]:
    """Run a master that must refuse to start; returns the finished process."""
    return subprocess.run(
        master_cmd(listen), check=False, cwd=folder, capture_output=True, text=True,
        timeout=GENEROUS_S * 2)


def master_cmd(listen: str) -> list[str]:
    return [PY, "-m", "master.service", "--config", "master.toml", "--listen", listen]


@pytest.mark.parametrize("same_state", [True, False], ids=["same-config", "same-port-only"])
def test_a_second_master_refuses_to_start(tmp_path: Path, same_state: bool) -> None:
    listen = f"127.0.0.1:{free_port()}"
    first_dir, second_dir = tmp_path / "a", tmp_path / ("a" if same_state else "b")
    write_config(first_dir)
    write_config(second_dir)
    with cluster(first_dir) as c:
        first = c.spawn("master", *master_cmd(listen)[1:])
        assert first.first_json()["listening"] == listen
        second = refused(second_dir, listen)
        assert second.returncode != 0
        assert "Traceback" not in second.stderr
        lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, second.stderr
        if same_state:
            assert "another io7-master holds" in lines[0]
            assert f"(pid {first.popen.pid})" in lines[0]
            assert "stop it first" in lines[0]
        else:
            assert f"{listen} is already in use by another process" in lines[0]
            assert "stop it or choose another port" in lines[0]
        assert first.popen.poll() is None, "the first master carries on"


async def _open_and_drop(address: str, n: int) -> None:
    """Open `n` AgentLink streams, each says Hello, reads its Welcome and is dropped
    (over mutual TLS: each of the 20 chargers on a channel with its own certificate)."""
    channels = [tls_channel(address, charger_dir(f"churn-{k}")) for k in range(20)]
    try:
        for i in range(n):
            call = pb_grpc.AgentLinkStub(  # type: ignore[no-untyped-call]
                channels[i % 20]).Connect()
            wiring = pb.ConnectorWiring(l1=pb.PHASE_L1, l2=pb.PHASE_L2, l3=pb.PHASE_L3)
            await call.write(pb.AgentMessage(hello=pb.Hello(
                charger_id=f"churn-{i % 20}", group="garage", charger_current_limit_a=32,
                connectors=[pb.ConnectorInfo(connector_id=1, wiring=wiring,
                                             hard_max_current_a=32)])))
            reply = await call.read()
            assert reply.WhichOneof("kind") == "welcome"
            call.cancel()
    finally:
        for channel in channels:
            await channel.close()


def test_stream_churn_leaves_no_orphan_task(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        master, address = c.master(limit_a=600)
        asyncio.run(_open_and_drop(address, 200))
        time.sleep(1.0)  # let the master notice the last cancellations
        master.stop()
        assert master.popen.returncode == 0
        err = master.err.read_text()
        assert "Task was destroyed" not in err, err[-3000:]
        assert err.count('"agent joined"') == 200


def test_status_shows_the_limit_in_force_beside_the_configured_one(tmp_path: Path) -> None:
    """No CT kit answers: the fallback limit (30 A) is in force, 60 A is configured."""
    with cluster(tmp_path) as c:
        _, address = c.master(limit_a=60, mode="dynamic", ct_port=free_port())
        wait_for(lambda: c.status(address)["ct_status"] == "CT_STATUS_LOST", "CT lost")
        phases = c.status(address)["phases"]
        assert [(p["limit_a"], p["configured_limit_a"]) for p in phases] == [(30.0, 60.0)] * 3
        text = subprocess.run([*c.ctl_args(address), "status"],
                              capture_output=True, text=True, timeout=30, check=True).stdout
        assert "limit in force 30.0 A per phase, configured 60.0 A" in text


def test_a_master_that_lost_its_state_is_obeyed_again(tmp_path: Path) -> None:
    """The agent has obeyed term 5; the master comes back on the same address without
    its state folder (term 1). The agent's Hello says 5, so the master moves to term 6,
    which the agent takes."""
    listen = f"127.0.0.1:{free_port()}"
    (tmp_path / "members.sqlite3.term").write_text("4\n")  # this start is term 5
    with cluster(tmp_path) as c:
        master, address = c.master(limit_a=60, listen=listen)
        agent = c.agent("io7-1", master=address)

        def obeys(term: int) -> bool:
            latest = last_offers(agent)
            return len(latest) == 2 and all(
                e["source"] == "master" and e["lease_ok"] and e["term"] == term
                for e in latest.values())

        wait_for(lambda: obeys(5), "agent obeys term 5")
        master.stop()
        for f in tmp_path.glob("members.sqlite3*"):
            f.unlink()
        master2, _ = c.master(limit_a=60, listen=listen, name="master2")
        took = wait_for(lambda: obeys(6), "agent obeys the restarted master")
        assert took < GENEROUS_S
        status = c.status(address)
        assert int(status["term"]) == 6
        (member,) = status["members"]
        assert member["online"] and member["limits_refused_reason"] == ""
        assert (tmp_path / "members.sqlite3.term").read_text().strip() == "6"
        assert master2.events("term raised above an agent's")
