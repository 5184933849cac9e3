"""Authorised administration (issue 11), as real processes on loopback over mutual TLS
(the e2e session's PKI): the installed limit is a ceiling SetGroupLimit cannot raise, a
closed group takes the chargers the installer admits, and every refusal and change
leaves a security log line, naming the certificate's identity, that `io7ctl
security-log` shows. The refusals TLS itself adds are in test_mtls.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from tests.e2e.harness import (
    INSTALLER,
    SITE,
    Cluster,
    charger_dir,
    cluster,
    ctl_args,
    last_offers,
    master_toml,
    tls_channel,
    wait_for,
)

pytestmark = pytest.mark.e2e


def ctl(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ctl_args(address), *args],
                          capture_output=True, text=True, timeout=30, check=False)


def security_log(address: str) -> list[dict[str, Any]]:
    done = ctl(address, "security-log", "-n", "1000", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout).get("events", []))


def kinds(address: str) -> list[str]:
    return [e["kind"] for e in security_log(address)]


def closed_master(c: Cluster, *, limit_a: float = 60) -> str:
    """A master of a closed group (group.closed = true), as its own process."""
    (c.tmp / "master.toml").write_text(master_toml(limit_a=limit_a, closed=True))
    proc = c.spawn("master", "-m", "master.service", "--config", "master.toml")
    return str(proc.first_json()["listening"])


def test_set_limit_can_lower_but_never_raise_past_the_installed_limit(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        master, address = c.master(limit_a=60)
        agent = c.agent("io7-1", master=address)
        wait_for(lambda: len(last_offers(agent)) == 2, "the agent gets limits")

        above = ctl(address, "set-limit", "50000")  # the attack
        assert above.returncode == 1
        line = above.stderr.strip()
        assert "\n" not in line and "INVALID_ARGUMENT" in line
        assert "allowed range [6.0, 60.0] A" in line, line
        assert [p["limit_a"] for p in c.status(address)["phases"]] == [60.0] * 3

        lowered = c.ctl(address, "set-limit", "30")
        assert (lowered["limit_a"], lowered["previous_limit_a"],
                lowered["installed_limit_a"]) == (30.0, 60.0, 60.0)
        wait_for(lambda: [p["limit_a"] for p in c.status(address)["phases"]] == [30.0] * 3,
                 "the next cycle's status shows the lowered limit")
        again = ctl(address, "set-limit", "60.5")  # the ceiling is the installed limit
        assert again.returncode == 1 and "[6.0, 60.0] A" in again.stderr
        restored = ctl(address, "set-limit", "60")
        assert restored.returncode == 0
        assert restored.stdout.strip() == ("group limit 60 A per phase (was 30 A; "
                                           "installed 60 A)")

        log = security_log(address)
        assert [e["kind"] for e in log] == ["config_loaded", "master_started", "member_joined",
                                            "limit_refused", "limit_set", "limit_refused",
                                            "limit_set"]
        assert "sha256 " in log[0]["detail"]
        refused = log[3]
        assert refused["who"] == f"io7://{SITE}/operator/{INSTALLER}?role=installer"
        assert refused["peer"].startswith("ipv4:127.0.0.1:")
        assert "limit_a=50000 A is outside the allowed range [6.0, 60.0] A" in \
            refused["detail"]
        assert log[4]["detail"] == "group limit 60 A -> 30 A per phase (installed 60 A)"
        assert "installed limit 60 A per phase" in log[1]["detail"]
        assert master.popen.poll() is None and agent.popen.poll() is None


def test_a_closed_group_takes_the_charger_the_installer_admits(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        address = closed_master(c)
        agent = c.agent("io7-2", master=address)
        wait_for(lambda: "hello_not_member" in kinds(address), "the refusal is logged")
        refusal = next(e for e in security_log(address) if e["kind"] == "hello_not_member")
        assert "io7-2 is not a member" in refusal["detail"]
        assert "io7ctl admit io7-2" in refusal["detail"]  # what the installer does
        assert "PERMISSION_DENIED" in refusal["detail"]
        assert not c.status(address)["members"]

        bad = ctl(address, "admit", "io7 2")
        assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr
        assert "whitespace" in bad.stderr
        done = ctl(address, "admit", "io7-2")
        assert (done.returncode, done.stdout.strip()) == (
            0, "io7-2 admitted: it joins at its next Hello")
        assert c.ctl(address, "admit", "io7-2") == {"charger_id": "io7-2",
                                                     "admitted": False}

        wait_for(lambda: any(m["online"] for m in c.status(address)["members"]),
                 "the admitted charger joins at its next Hello")
        wait_for(lambda: len(last_offers(agent)) == 2, "and gets limits")
        found = kinds(address)
        assert {"admit_refused", "member_admitted", "member_joined"} <= set(found)
        text = ctl(address, "security-log", "-n", "3").stdout.splitlines()
        # The agent may join before or after the second admit: either order is right.
        assert len(text) == 3 and any("member_joined" in line for line in text)


async def _hello(address: str, hello: pb.Hello, cert: str = "") -> grpc.StatusCode:
    """Say `hello` on a fresh stream, with charger `cert`'s certificate (default: the
    Hello's own); the code the master ends it with (OK = Welcome)."""
    async with tls_channel(address, charger_dir(cert or hello.charger_id)) as ch:
        call = pb_grpc.AgentLinkStub(ch).Connect()  # type: ignore[no-untyped-call]
        await call.write(pb.AgentMessage(hello=hello))
        try:
            reply = await asyncio.wait_for(call.read(), 10)
        except grpc.aio.AioRpcError as err:
            return err.code()
        assert reply.WhichOneof("kind") == "welcome"
        call.cancel()
        return grpc.StatusCode.OK


def hello(charger_id: str, *, group: str = "garage", term: int = 0) -> pb.Hello:
    wiring = pb.ConnectorWiring(l1=pb.PHASE_L1, l2=pb.PHASE_L2, l3=pb.PHASE_L3)
    return pb.Hello(charger_id=charger_id, group=group, charger_current_limit_a=32.0,
                    last_seen_term=term, connectors=[pb.ConnectorInfo(
                        connector_id=1, wiring=wiring, hard_max_current_a=32.0)])


def test_refused_hellos_and_a_raised_term_are_logged_and_survive_a_restart(
        tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        master, address = c.master(limit_a=60)
        said = {name: asyncio.run(_hello(address, h, "io7-1" if name == "forged id" else ""))
                for name, h in {
            "forged id": hello("io7-1\n\x1b[2Kio7-9  yes"),
            "wrong group": hello("io7-3", group="office"),
            "absurd term": hello("io7-4", term=2**60),
            "raises the term": hello("io7-5", term=7),
        }.items()}
        assert said == {"forged id": grpc.StatusCode.INVALID_ARGUMENT,
                        "wrong group": grpc.StatusCode.FAILED_PRECONDITION,
                        "absurd term": grpc.StatusCode.INVALID_ARGUMENT,
                        "raises the term": grpc.StatusCode.OK}
        log = security_log(address)
        assert [e["kind"] for e in log] == [
            "config_loaded", "master_started", "hello_invalid", "hello_wrong_group",
            "hello_invalid", "member_joined", "term_raised"]
        assert "control character" in log[2]["detail"]
        assert "'office'" in log[3]["detail"]
        assert "last_seen_term 1152921504606846976" in log[4]["detail"]
        assert log[6]["detail"] == "term 1 -> 8: charger io7-5's Hello said last_seen_term 7"
        text = ctl(address, "security-log").stdout
        assert "\x1b" not in text  # the forged id is escaped, never raw
        assert len(text.splitlines()) == 7  # and its newline forged no line

        master.stop()  # SIGTERM: master_stopped is written before the process ends
        path = tmp_path / "members.sqlite3.security.jsonl"
        assert json.loads(path.read_text().splitlines()[-1])["kind"] == "master_stopped"
        _, address = c.master(limit_a=60, name="master2")
        assert kinds(address)[-4:] == ["term_raised", "master_stopped", "config_loaded",
                                       "master_started"]
        assert "term 9" in security_log(address)[-1]["detail"]  # appended, not truncated
