"""Every charger keeps a security log, with or without OCPP (issue 11 §3).

The real agent (its whole run loop, a real gRPC channel on loopback) against the fake
master of tests/agent/test_link_bounds.py, which repeats a Welcome/Limits with an 80 A
fail-safe every 0.2 s; and against the simulated CSMS for the OCPP events. One file,
`<state.dir>/security.jsonl`, holds them all, and no secret from the config.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog

from agent.audit import (
    Repeats,
)
from agent.config import AgentConfig, load_agent_config
from agent.linktls import link_tls
from agent.service import Agent
from hw.securitylog import SecurityEvent, config_digest, decode
from hw.sim.csms import Csms
from master.pki import Pki
from master.pkicerts import Kind
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsFiles, load_tls, server_credentials
from tests.agent.ocpp.test_chargepoint import CP, agent_config
from tests.agent.ocpp.test_chargepoint import running as running_ocpp
from tests.agent.ocpp.test_cp_connection import PASSWORD, failed_attempts
from tests.agent.test_link_bounds import (
    AGENT_TOML,
    FakeMaster,
    Script,
    eventually,
    fake_master,
    latest,
    running,
)


def security_log(config: AgentConfig) -> list[SecurityEvent]:
    path = config.state_dir / "security.jsonl"
    return [e for e in map(decode, path.read_bytes().splitlines()) if e is not None]


def test_the_config_digest_is_the_files_sha256_in_groups(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[ocpp]\nauthorization_key = "Hk4-pZ9q-Tr7w-Xe2"\n')
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    got = config_digest(path)
    assert got.replace(" ", "") == digest and "Hk4" not in got
    assert config_digest(tmp_path / "missing.toml").startswith("unreadable")


@pytest.mark.parametrize(("seen", "expected"), [
    ([("a", 0.0), ("a", 0.2), ("a", 59.0)], [True, False, False]),
    ([("a", 0.0), ("b", 0.2), ("a", 0.4)], [True, True, True]),
    ([("a", 0.0), ("a", 60.0), ("a", 61.0)], [True, True, False]),
], ids=["a retry is not new", "a new reason is", "once a minute"])
def test_repeats_lets_a_new_reason_through_and_the_same_once_a_minute(
        seen: list[tuple[str, float]], expected: list[bool]) -> None:
    repeats = Repeats(every_s=60.0)
    assert [repeats.due(reason, now) for reason, now in seen] == expected


def test_repeats_without_a_period_says_each_reason_once_until_cleared() -> None:
    repeats = Repeats(every_s=None)
    assert [repeats.due("a", t) for t in (0.0, 1e6)] == [True, False]
    repeats.clear()
    assert repeats.due("a", 2e6)


async def test_a_charger_without_ocpp_logs_its_life_and_the_masters_refusals(
        tmp_path: Path) -> None:
    script = Script()  # failsafe 80 A: refused, repeated every 0.2 s
    async with fake_master(script) as (address, _):
        path = tmp_path / "agent.toml"
        path.write_text(AGENT_TOML.format(address=address))
        config = load_agent_config(path)
        assert config.ocpp is None
        async with running(config):
            await eventually(lambda: len(script.states) >= 15, "fifteen AgentStates")
            assert "fail-safe current 80 A" in latest(script).limits_refused_reason
            script.failsafe_a = 6.0  # the master is fixed: its term is obeyed
            await eventually(lambda: latest(script).lease_ok, "an obeyed lease")
            await asyncio.sleep(0.5)
    events = security_log(config)
    kinds = [e.kind for e in events]
    assert kinds == ["plaintext", "config_loaded", "agent_started",
                     "master_settings_refused", "master_term", "agent_stopped"], kinds
    by_kind = {e.kind: e for e in events}
    assert by_kind["config_loaded"].detail.replace(" ", "").endswith(
        hashlib.sha256(path.read_bytes()).hexdigest())
    assert "io7-bounds-01" in by_kind["agent_started"].detail
    assert "PLAINTEXT" in by_kind["agent_started"].detail
    refused = by_kind["master_settings_refused"]
    assert refused.who == "fake-master"
    assert "80 A" in refused.detail and "0 or 6-6 A" in refused.detail, refused
    assert "fake-master" in by_kind["master_term"].detail
    assert "0 -> 7" in by_kind["master_term"].detail
    assert all(e.who in ("", "io7-bounds-01", "fake-master") for e in events)


async def test_ocpp_events_land_in_the_same_file_and_no_secret_does(tmp_path: Path) -> None:
    # The back office expects another password: refused credentials, an OCPP event.
    async with Csms(passwords={CP: b"another-password-9"}) as csms:
        config = agent_config(tmp_path, csms.url, ocpp=(
            f'security_profile = 1\nauthorization_key = "{PASSWORD}"'))
        async with running_ocpp(config) as agent:
            await failed_attempts(agent, 2)
    assert PASSWORD in config.file.read_text()
    files = sorted(p.name for p in config.state_dir.glob("*.jsonl*"))
    assert files == ["security.jsonl"], files
    kinds = [e.kind for e in security_log(config)]
    assert kinds[:2] == ["config_loaded", "agent_started"], kinds
    assert "ocpp_startup" in kinds and "ocpp_csms_refused_credentials" in kinds, kinds
    assert kinds[-1] == "agent_stopped", kinds
    raw = (config.state_dir / "security.jsonl").read_text()
    assert PASSWORD not in raw and PASSWORD.replace("-", "") not in raw


@asynccontextmanager
async def tls_fake_master(folder: Path) -> AsyncIterator[str]:
    """The fake master over TLS with the certificate in `folder` (another site's CA)."""
    server = grpc.aio.server()
    pb_grpc.add_AgentLinkServicer_to_server(FakeMaster(Script()), server)  # type: ignore[no-untyped-call]
    material = load_tls(TlsFiles.in_folder(folder))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(material))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_fake_masters_refused_handshake_is_logged_once(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    site, fake = Pki(tmp_path / "site"), Pki(tmp_path / "fake")
    for pki in (site, fake):  # the same site name and ids, another CA
        pki.init("garage", now=now)
    site.issue(Kind.CHARGER, "io7-bounds-01", now=now)
    fake.issue(Kind.CHARGER, "master", now=now)
    async with tls_fake_master(fake.identity_folder(Kind.CHARGER, "master")) as address:
        path = tmp_path / "agent.toml"
        mine = site.identity_folder(Kind.CHARGER, "io7-bounds-01")
        path.write_text(AGENT_TOML.format(address=address).replace(
            "plaintext = true", f'dir = "{mine}"'))
        config = load_agent_config(path)
        agent = Agent(config, tls=link_tls(config, now=now))
        stop = asyncio.Event()
        with structlog.testing.capture_logs() as logs:
            task = asyncio.create_task(agent.run(stop))
            await eventually(lambda: sum("TLS handshake" in e["event"] for e in logs) >= 4,
                             "four refused handshakes")
            stop.set()
            await asyncio.wait_for(task, 10.0)
    events = security_log(config)
    kinds = [e.kind for e in events]
    assert kinds == ["config_loaded", "agent_started", "master_tls_refused",
                     "agent_stopped"], kinds
    refused = events[2]
    assert refused.peer == address and "fake master" in refused.detail, refused
    assert "mutual TLS" in events[1].detail


class RefusingMaster(pb_grpc.AgentLinkServicer):
    """A master that refuses every stream, as a closed group refuses an unadmitted one."""

    def __init__(self) -> None:
        self.refused = 0

    async def Connect(self, request_iterator: Any, context: Any) -> None:
        await anext(aiter(request_iterator))
        self.refused += 1
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not a member of group garage")


async def test_a_masters_repeated_refusal_is_logged_once(tmp_path: Path) -> None:
    master = RefusingMaster()
    server = grpc.aio.server()
    pb_grpc.add_AgentLinkServicer_to_server(master, server)  # type: ignore[no-untyped-call]
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    try:
        path = tmp_path / "agent.toml"
        path.write_text(AGENT_TOML.format(address=address))
        config = load_agent_config(path)
        async with running(config):
            await eventually(lambda: master.refused >= 4, "four refused streams")
    finally:
        await server.stop(0)
    events = security_log(config)
    refused = [e for e in events if e.kind == "master_refused"]
    assert len(refused) == 1, events
    assert "PERMISSION_DENIED: not a member of group garage" in refused[0].detail
    assert refused[0].peer == address
