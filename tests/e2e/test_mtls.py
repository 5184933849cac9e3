"""Mutual TLS on every LAN channel, end to end (issue 11 §2, §5): a real master and a
real agent as processes on loopback, certificates made by io7-pki's library in the test
(the e2e session's site, tests/e2e/harness.py), real gRPC clients for the attacker.

Refused by the TLS handshake, before any handler runs (gRPC core; the client sees
UNAVAILABLE): a plaintext client, no certificate, another CA's, an expired one. Each
leaves a security log `handshake_refused` line with the peer's address and the reason,
read from gRPC core's handshake trace (master/handshaketap.py): these tests pin that
format against the installed grpcio. Refused by the master after it, each with
PERMISSION_DENIED and a security log line: a revoked certificate, a charger's Hello as
another charger, a charger certificate on GroupAdmin, a viewer changing the group, a
charger nobody admitted. Every refusal leaves the admitted agent's limits flowing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from master.pki import Pki
from protos.identity import Kind, Role
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsFiles, channel_options, load_tls
from tests.e2e.harness import (
    SITE,
    VIEWER,
    Cluster,
    charger_dir,
    cluster,
    ctl_args,
    last_offers,
    operator_dir,
    site_pki,
    tls_channel,
    wait_for,
)
from tests.e2e.test_security import hello

pytestmark = pytest.mark.e2e
CALL_S = 10.0  # generous: only a refusal or an answer is asserted, never speed


def ctl(address: str, *args: str, operator: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ctl_args(address, operator=operator), *args],
                          capture_output=True, text=True, timeout=30, check=False)


def security_log(address: str) -> list[dict[str, Any]]:
    done = ctl(address, "security-log", "-n", "1000", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout).get("events", []))


async def say_hello(channel: grpc.aio.Channel, cid: str) -> tuple[grpc.StatusCode, str]:
    """Hello as `cid`; the code and details the master answers with (OK = Welcome)."""
    call = pb_grpc.AgentLinkStub(channel).Connect()  # type: ignore[no-untyped-call]
    try:
        await call.write(pb.AgentMessage(hello=hello(cid)))
        reply = await asyncio.wait_for(call.read(), CALL_S)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    except asyncio.InvalidStateError:  # the call ended while we wrote: its status says why
        return await call.code(), await call.details() or ""
    assert reply.WhichOneof("kind") == "welcome"
    call.cancel()
    return grpc.StatusCode.OK, ""


async def get_status(channel: grpc.aio.Channel) -> tuple[grpc.StatusCode, str]:
    try:
        await pb_grpc.GroupAdminStub(channel).GetStatus(  # type: ignore[no-untyped-call]
            pb.GetStatusRequest(), timeout=CALL_S)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


def channel_with(address: str, credentials: grpc.ChannelCredentials) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(address, credentials, options=channel_options(SITE))


def flowing(c: Cluster, address: str, cid: str) -> None:
    """`cid` is online and its agent's limits keep coming (a fresh cycle's status)."""
    first = int(c.status(address)["cycle"])  # int64 is a JSON string
    wait_for(lambda: int((s := c.status(address))["cycle"]) > first + 2 and any(
        m["charger_id"] == cid and m["online"] for m in s["members"]),
        f"{cid} online and the cycle moving")


def admitted_agent(c: Cluster, address: str, cid: str) -> None:
    assert ctl(address, "admit", cid).returncode == 0
    agent = c.agent(cid, master=address)
    wait_for(lambda: len(last_offers(agent)) == 2 and any(
        e.get("source") == "master" for e in last_offers(agent).values()),
        f"{cid} gets the master's limits")


def test_handshake_refusals_and_the_ones_the_master_logs(tmp_path: Path) -> None:
    other = Pki(tmp_path / "other-site")  # another CA, same site name and ids
    now = dt.datetime.now(dt.UTC)
    other.init(SITE, now=now)
    other.issue(Kind.CHARGER, "io7-b", now=now)
    pki = site_pki()
    pki.issue(Kind.CHARGER, "io7-expired", now=now - dt.timedelta(days=400), days=30,
              force=True)
    with cluster(tmp_path) as c:
        master, address = c.master(limit_a=60, closed=True)
        admitted_agent(c, address, "io7-a")
        assert not [e for e in security_log(address) if e["kind"].startswith("handshake")]

        async def attacks() -> dict[str, tuple[grpc.StatusCode, str]]:
            ca = load_tls(TlsFiles.in_folder(charger_dir("io7-a"))).ca_pem
            said: dict[str, tuple[grpc.StatusCode, str]] = {}
            async with grpc.aio.insecure_channel(address) as ch:
                said["plaintext"] = await get_status(ch)
            async with channel_with(address, grpc.ssl_channel_credentials(ca)) as ch:
                said["no certificate"] = await say_hello(ch, "io7-b")
            mallory = load_tls(TlsFiles.in_folder(other.identity_folder(Kind.CHARGER, "io7-b")))
            async with channel_with(address, grpc.ssl_channel_credentials(  # trusts our CA
                    ca, mallory.key_pem, mallory.cert_pem)) as ch:
                said["another CA"] = await say_hello(ch, "io7-b")
            async with tls_channel(address, charger_dir("io7-expired")) as ch:
                said["expired"] = await say_hello(ch, "io7-expired")
            async with tls_channel(address, charger_dir("io7-b")) as ch:
                said["B as A"] = await say_hello(ch, "io7-a")
                said["charger on GroupAdmin"] = await get_status(ch)
                said["not admitted"] = await say_hello(ch, "io7-b")
            return said

        said = asyncio.run(attacks())
        handshake = {k: v[0] for k, v in said.items()
                     if k in ("plaintext", "no certificate", "another CA", "expired")}
        assert handshake == dict.fromkeys(handshake, grpc.StatusCode.UNAVAILABLE)
        assert said["B as A"] == (grpc.StatusCode.PERMISSION_DENIED,
                                  f"io7://{SITE}/charger/io7-b cannot say Hello as charger "
                                  "'io7-a'")
        assert said["charger on GroupAdmin"][0] is grpc.StatusCode.PERMISSION_DENIED
        assert "may not GetStatus" in said["charger on GroupAdmin"][1]
        assert said["not admitted"][0] is grpc.StatusCode.PERMISSION_DENIED
        assert "io7ctl admit io7-b" in said["not admitted"][1]
        flowing(c, address, "io7-a")

        reasons = {"not TLS (plaintext or garbage)", "no client certificate",
                   "certificate from another CA (unknown issuer)", "certificate expired"}
        wait_for(lambda: reasons <= {e["detail"] for e in security_log(address)
                                     if e["kind"] == "handshake_refused"},
                 "a handshake_refused line per reason")  # written as gRPC core traces them
        log = security_log(address)
        refused = [e for e in log if e["kind"] == "handshake_refused"]
        assert {e["detail"] for e in refused} == reasons  # a client may retry: >= 1 each
        assert all(e["peer"].startswith("ipv4:127.0.0.1:") and e["who"] == "ipv4:127.0.0.1"
                   for e in refused)
        log = [e for e in log if not e["kind"].startswith("handshake")]
        kinds = [e["kind"] for e in log]
        assert kinds[-3:] == ["identity_mismatch", "role_refused", "hello_not_member"]
        assert all(e["who"] == f"io7://{SITE}/charger/io7-b" for e in log[-3:])
        assert "plaintext" not in kinds
        stderr = master.err.read_text()  # the tap forwards all but the trace it enabled
        assert "CallNextHandshakerLocked" not in stderr and "PEER_DID_NOT_RETURN" in stderr
        assert '"event": "master listening"' in stderr

        # admitted, the charger with a valid certificate joins
        assert ctl(address, "admit", "io7-b").returncode == 0

        async def join_b() -> tuple[grpc.StatusCode, str]:
            async with tls_channel(address, charger_dir("io7-b")) as ch:
                return await say_hello(ch, "io7-b")

        assert asyncio.run(join_b()) == (grpc.StatusCode.OK, "")
        assert master.popen.poll() is None


def test_a_revoked_certificate_is_refused_from_its_next_stream(tmp_path: Path) -> None:
    pki = site_pki()
    pki.issue(Kind.CHARGER, "io7-stolen", now=dt.datetime.now(dt.UTC), force=True)
    with cluster(tmp_path) as c:
        _, address = c.master(limit_a=60)  # open group: only the certificate decides
        admitted_agent(c, address, "io7-a")

        async def hello_stolen() -> tuple[grpc.StatusCode, str]:
            async with tls_channel(address, charger_dir("io7-stolen")) as ch:
                return await say_hello(ch, "io7-stolen")

        assert asyncio.run(hello_stolen()) == (grpc.StatusCode.OK, "")
        cert, _ = pki.revoke("io7-stolen", now=dt.datetime.now(dt.UTC), kind=Kind.CHARGER)
        code, details = asyncio.run(hello_stolen())
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert details == (f"io7://{SITE}/charger/io7-stolen: certificate "
                           f"{cert.serial_number:x} is revoked")
        entry = security_log(address)[-1]
        assert entry["kind"] == "tls_refused" and "is revoked" in entry["detail"]
        flowing(c, address, "io7-a")


def test_a_viewer_reads_but_cannot_change_the_group(tmp_path: Path) -> None:
    viewer = operator_dir(VIEWER, Role.VIEWER)
    with cluster(tmp_path) as c:
        _, address = c.master(limit_a=60, closed=True)
        admitted_agent(c, address, "io7-a")
        assert ctl(address, "status", operator=viewer).returncode == 0
        assert ctl(address, "security-log", operator=viewer).returncode == 0
        for args in (("set-limit", "30"), ("admit", "io7-z"), ("rebuild",)):
            done = ctl(address, *args, operator=viewer)
            assert done.returncode == 1, done
            line = done.stderr.strip()
            assert "\n" not in line and "PERMISSION_DENIED" in line
            assert f"io7://{SITE}/operator/{VIEWER}?role=viewer may not " in line
            assert "--role installer" in line  # what certificate it takes
        log = security_log(address)
        assert [e["kind"] for e in log[-3:]] == ["role_refused"] * 3
        assert [p["limit_a"] for p in c.status(address)["phases"]] == [60.0] * 3
        flowing(c, address, "io7-a")


def test_io7ctl_says_what_is_missing_when_the_handshake_fails(tmp_path: Path) -> None:
    other = Pki(tmp_path / "other-site")
    now = dt.datetime.now(dt.UTC)
    other.init(SITE, now=now)
    other.issue(Kind.OPERATOR, "mallory", now=now, role=Role.INSTALLER)
    with cluster(tmp_path) as c:
        _, address = c.master(limit_a=60)
        wrong = ctl(address, "status",
                    operator=other.identity_folder(Kind.OPERATOR, "mallory"))
        assert wrong.returncode == 3
        assert "the master refused this certificate" in wrong.stderr
        assert "check --pki-dir" in wrong.stderr
        bare = subprocess.run([*ctl_args(address, tls=False), "status"], capture_output=True,
                              text=True, timeout=30, check=False)
        assert bare.returncode == 3 and "--pki-dir DIR" in bare.stderr


def test_an_agent_refuses_a_master_of_another_ca(tmp_path: Path) -> None:
    """The issue's fake master at the agent's address: another CA's charger
    certificate, even with this site's name; the agent never takes its Welcome."""
    fake = Pki(tmp_path / "fake-site")
    now = dt.datetime.now(dt.UTC)
    fake.init(SITE, now=now)
    fake.issue(Kind.CHARGER, "e2e-master", now=now)
    folder = fake.identity_folder(Kind.CHARGER, "e2e-master")
    with cluster(tmp_path) as c:
        c.master(limit_a=60)  # writes master.toml; replaced below by the fake's
        text = (tmp_path / "master.toml").read_text()
        start = text.index("[tls]")
        (tmp_path / "fake.toml").write_text(
            text[:start] + f'[tls]\ndir = "{folder}"\ncrl = "{fake.crl}"\n')
        (tmp_path / "fake.toml").write_text(
            (tmp_path / "fake.toml").read_text().replace("members.sqlite3", "fake.sqlite3"))
        proc = c.spawn("fake", "-m", "master.service", "--config", "fake.toml")
        address = str(proc.first_json()["listening"])
        agent = c.agent("io7-a", master=address)
        wait_for(lambda: any("TLS handshake with the master failed" in line
                             for line in agent.err.read_text().splitlines()),
                 "the agent warns about the handshake")
        assert not agent.events("joined group")
        assert '"agent joined"' not in proc.err.read_text()
        # the agent closes the handshake: the fake master's own security log says so
        fake_log = tmp_path / "fake.sqlite3.security.jsonl"
        wait_for(lambda: '"kind": "handshake_abandoned"' in fake_log.read_text(),
                 "the fake master logs the agent that left its handshake")


def test_the_plaintext_switch_is_loud(tmp_path: Path) -> None:
    with cluster(tmp_path, tls=False) as c:
        master, address = c.master(limit_a=60)
        agent = c.agent("io7-p", master=address)
        wait_for(lambda: len(last_offers(agent)) == 2, "plaintext still works")
        assert "PLAINTEXT" in master.err.read_text()
        assert "PLAINTEXT" in agent.err.read_text()
        done = subprocess.run([*ctl_args(address, tls=False), "security-log", "--json"],
                              capture_output=True, text=True, timeout=30, check=True)
        events = json.loads(done.stdout)["events"]
        assert events[0]["kind"] == "plaintext"
        assert events[1]["kind"] == "config_loaded"
        assert "in PLAINTEXT" in events[2]["detail"]
        assert next(e for e in events if e["kind"] == "member_joined")["who"] == \
            "ipv4:127.0.0.1"  # plaintext: the peer's host names it
