"""The master daemon over real gRPC on loopback: agents join, Limits flow, GroupAdmin works,
and a misbehaving stream is closed alone. Agents here speak the real protocol through the
agent's own `MasterLink`; their states are written by hand. Every channel is mutual TLS
with the e2e session's PKI (tests/e2e/harness.py): each agent with its own charger
certificate, GroupAdmin calls as the session's installer."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from agent.link import MasterLink
from master.config import load_master_config
from master.ctl import render
from master.service import serve
from master.statusdelta import DeltaReader
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsFiles, load_tls
from tests.e2e.harness import charger_dir, master_tls, operator_dir, tls_channel
from tests.master.test_status_deltas import without_ages

pytestmark = pytest.mark.e2e

CONFIG = """
[master]
id = "test-master"
listen = "127.0.0.1:0"
state_db = "{db}"
cycle_ms = 100
lease_cycles = 3

[group]
name = "garage"
mode = "static"
limit_a = 60
offline_strategy = "maximise"
closed = false

{tls}

[group.tuning]
settle_s = 0.2
ramp_up_a = 80.0
demand_cap_after_s = 3600.0
"""


@dataclass
class FakeAgent:
    """A charger at the protocol level: Hello, then states; records what it receives."""

    charger_id: str
    group: str = "garage"
    wants: bool = True
    current_a: float = 0.0
    limits: list[pb.Limits] = field(default_factory=list)
    welcomes: list[pb.Welcome] = field(default_factory=list)
    seq: int = 0
    refused: str = ""  # AgentState.limits_refused_reason
    highest_term_seen: int = 0

    def hello(self) -> pb.Hello:
        wiring = pb.ConnectorWiring(l1=pb.PHASE_L1, l2=pb.PHASE_L2, l3=pb.PHASE_L3)
        return pb.Hello(charger_id=self.charger_id, group=self.group,
                        charger_current_limit_a=32.0,
                        connectors=[pb.ConnectorInfo(connector_id=1, wiring=wiring,
                                                     hard_max_current_a=32.0)])

    def state(self) -> pb.AgentState:
        self.seq += 1
        c = self.current_a
        return pb.AgentState(
            charger_id=self.charger_id, sequence=self.seq, limits_refused_reason=self.refused,
            highest_term_seen=self.highest_term_seen, connectors=[
            pb.ConnectorState(connector_id=1, pilot_state=pb.PILOT_STATE_C,
                              status=pb.CONNECTOR_STATUS_CHARGING,
                              current_a=pb.LineValues(l1=c, l2=c, l3=c),
                              voltage_v=pb.LineValues(l1=230, l2=230, l3=230),
                              max_current_a=32.0, wants_power=self.wants, meter_ok=True)])

    def last_a(self) -> float:
        return self.limits[-1].connectors[0].current_a if self.limits else math.nan


@contextlib.asynccontextmanager
async def running_master(tmp_path: Path) -> AsyncIterator[str]:
    path = tmp_path / "master.toml"
    path.write_text(CONFIG.format(db=tmp_path / "members.sqlite3", tls=master_tls()))
    config = load_master_config(path)
    bound: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, ready=bound.set_result, stop=stop))
    try:
        yield await asyncio.wait_for(bound, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def admin_channel(address: str) -> grpc.aio.Channel:
    """A channel as the session's installer."""
    return tls_channel(address, operator_dir())


@contextlib.asynccontextmanager
async def joined(address: str, agent: FakeAgent) -> AsyncIterator[MasterLink]:
    link = MasterLink(address, agent.hello, agent.welcomes.append, agent.limits.append,
                      tls=load_tls(TlsFiles.in_folder(charger_dir(agent.charger_id))))
    stop = asyncio.Event()
    task = asyncio.create_task(link.run(stop))

    async def feed() -> None:
        while True:
            link.publish(agent.state())
            await asyncio.sleep(0.05)

    feeder = asyncio.create_task(feed())
    try:
        yield link
    finally:
        feeder.cancel()
        stop.set()
        await asyncio.wait_for(task, 10)


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Generous bound for a real-time loopback check (the machine is shared)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_agents_join_and_limits_share_the_group_limit(tmp_path: Path) -> None:
    async with running_master(tmp_path) as address:
        agents = [FakeAgent(f"io7-{i}") for i in range(3)]
        async with contextlib.AsyncExitStack() as stack:
            for a in agents:
                await stack.enter_async_context(joined(address, a))
            await eventually(lambda: all(a.last_a() == 20.0 for a in agents))
            assert all(a.welcomes and a.welcomes[0].settings.group == "garage" for a in agents)
            lim = agents[0].limits[-1]
            assert lim.valid_for_ms == 300 and lim.term >= 1 and lim.cycle > 0
            async with admin_channel(address) as ch:
                admin = pb_grpc.GroupAdminStub(ch)
                status = await admin.GetStatus(pb.GetStatusRequest())
                assert {m.charger_id for m in status.members if m.online} == {
                    "io7-0", "io7-1", "io7-2"}
                assert all(p.allocated_a <= p.limit_a for p in status.phases)
                # SetGroupLimit: everyone follows; a bad value is refused clearly.
                resp = await admin.SetGroupLimit(pb.SetGroupLimitRequest(limit_a=30))
                assert resp.previous_limit_a == 60
                await eventually(lambda: all(a.last_a() == 10.0 for a in agents))
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await admin.SetGroupLimit(pb.SetGroupLimitRequest(limit_a=math.nan))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                health = health_pb2_grpc.HealthStub(ch)
                ok = await health.Check(health_pb2.HealthCheckRequest(
                    service="io7.cluster.v1.AgentLink"))
                assert ok.status == health_pb2.HealthCheckResponse.SERVING


async def test_wrong_group_is_refused_with_a_clear_status(tmp_path: Path) -> None:
    async with running_master(tmp_path) as address:
        stranger = FakeAgent("io7-x", group="other")
        async with joined(address, stranger) as link:
            await eventually(lambda: "FAILED_PRECONDITION" in link.last_error)
            assert "belongs to group 'other'" in link.last_error
            assert not stranger.limits


async def test_a_misbehaving_stream_is_closed_alone(tmp_path: Path) -> None:
    async with running_master(tmp_path) as address:
        good = FakeAgent("io7-good")
        async with joined(address, good):
            await eventually(lambda: good.last_a() == 30.0 or good.last_a() == 32.0)
            async with tls_channel(address, charger_dir("io7-bad")) as ch:
                call = pb_grpc.AgentLinkStub(ch).Connect()
                bad = FakeAgent("io7-bad")
                await call.write(pb.AgentMessage(hello=bad.hello()))
                await call.write(pb.AgentMessage(hello=bad.hello()))  # Hello twice: refused
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    _ = [message async for message in call]  # read until the refusal
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            n = len(good.limits)
            await eventually(lambda: len(good.limits) > n + 3)  # the good one carries on
            assert good.last_a() > 0


async def test_nan_measurement_takes_the_member_offline_not_to_zero(tmp_path: Path) -> None:
    async with running_master(tmp_path) as address:
        a, b = FakeAgent("io7-a"), FakeAgent("io7-b")
        async with joined(address, a), joined(address, b):
            await eventually(lambda: a.last_a() == 30.0 and b.last_a() == 30.0)
            b.current_a = math.nan
            async with admin_channel(address) as ch:
                admin = pb_grpc.GroupAdminStub(ch)

                async def b_offline() -> bool:
                    s = await admin.GetStatus(pb.GetStatusRequest())
                    return any(m.charger_id == "io7-b" and not m.online for m in s.members)

                deadline = asyncio.get_running_loop().time() + 10
                while not await b_offline():
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.05)
            # b's last grant stays reserved until its lease and settle time have passed,
            # then a (Maximise) gets the whole limit up to its connector max.
            await eventually(lambda: a.last_a() == 32.0)


async def test_reflection_answers_v1_and_v1alpha(tmp_path: Path) -> None:
    """Current clients ask grpc.reflection.v1 first. The v1 messages have v1alpha's field
    numbers (grpc/grpc reflection/v1/reflection.proto), so v1alpha's classes speak v1."""
    service = "io7.cluster.v1.GroupAdmin"
    async with running_master(tmp_path) as address, admin_channel(address) as ch:
        for package in ("grpc.reflection.v1", "grpc.reflection.v1alpha"):
            info = ch.stream_stream(
                f"/{package}.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
            requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                        reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
                        reflection_pb2.ServerReflectionRequest(
                            file_containing_symbol=f"{package}.ServerReflection")]
            replies = [r async for r in info(iter(requests), timeout=5)]
            listed = {s.name for s in replies[0].list_services_response.service}
            assert {service, "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection",
                    "grpc.health.v1.Health"} <= listed, package
            files = replies[1].file_descriptor_response.file_descriptor_proto
            assert pb.DESCRIPTOR.serialized_pb in files, package
            # The reflection service's own schema, under its own package name.
            own = [descriptor_pb2.FileDescriptorProto.FromString(f)
                   for f in replies[2].file_descriptor_response.file_descriptor_proto]
            assert [f.package for f in own] == [package]
            method = own[0].service[0].method[0]
            assert method.input_type == f".{package}.ServerReflectionRequest"
            assert method.client_streaming and method.server_streaming


@pytest.mark.parametrize(("charger_id", "why"), [
    ("io7-1\n\x1b[2Kio7-2      yes       1  charging", "control character"),
    ("io7 1", "whitespace"),
    ("io7-\u202e1", "control character"),  # right-to-left override: reorders the line
    ("", "empty"),
    ("x" * 65, "longer than 64"),
], ids=["newline-escape", "space", "bidi-override", "empty", "too-long"])
async def test_a_charger_id_that_would_forge_the_status_is_refused(
        tmp_path: Path, charger_id: str, why: str) -> None:
    async with running_master(tmp_path) as address, \
            tls_channel(address, charger_dir("io7-forger")) as ch, admin_channel(address) as op:
        call = pb_grpc.AgentLinkStub(ch).Connect()
        hello = FakeAgent(charger_id).hello()
        await call.write(pb.AgentMessage(hello=hello))
        with pytest.raises(grpc.aio.AioRpcError) as err:  # not a Welcome
            await asyncio.wait_for(call.read(), 10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = err.value.details() or ""
        assert why in details and "charger id" in details
        assert details.isprintable(), details  # the refusal does not echo it raw either
        status = await pb_grpc.GroupAdminStub(op).GetStatus(pb.GetStatusRequest())
        assert not status.members


async def test_a_member_offline_for_a_bad_report_says_why(tmp_path: Path) -> None:
    async with running_master(tmp_path) as address:
        a = FakeAgent("io7-a")
        async with joined(address, a), admin_channel(address) as ch:
            admin = pb_grpc.GroupAdminStub(ch)
            await eventually(lambda: a.last_a() > 0)
            a.current_a = math.nan
            status = pb.GroupStatus()
            deadline = asyncio.get_running_loop().time() + 10
            while not any(m.offline_reason for m in status.members):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
                status = await admin.GetStatus(pb.GetStatusRequest())
            (m,) = status.members
            assert not m.online
            assert m.offline_reason == "last state refused: connector 1 current_a[L1]=nan " \
                                       "is outside [0, 80]"
            assert f"offline: {m.offline_reason}" in render(status)


async def test_a_member_that_refuses_the_limits_shows_it_and_counts_offline(
        tmp_path: Path) -> None:
    async with running_master(tmp_path) as address:
        a, b = FakeAgent("io7-a"), FakeAgent("io7-b")
        async with joined(address, a), joined(address, b), \
                admin_channel(address) as ch:
            admin = pb_grpc.GroupAdminStub(ch)
            await eventually(lambda: a.last_a() == 30.0 and b.last_a() == 30.0)
            b.refused = "fail-safe 40 A is above this charger's 16 A"
            status = pb.GroupStatus()
            deadline = asyncio.get_running_loop().time() + 10
            while not any(m.limits_refused_reason for m in status.members):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
                status = await admin.GetStatus(pb.GetStatusRequest())
            mb = {m.charger_id: m for m in status.members}["io7-b"]
            assert mb.limits_refused_reason == b.refused and not mb.online
            assert mb.offline_reason == "it refuses this master's limits"
            assert f"refuses this master's limits: {b.refused}" in render(status)
            # Counted offline: its last grant stays reserved until its lease and settle
            # time have passed, then a (Maximise) gets the whole limit up to 32 A.
            await eventually(lambda: a.last_a() == 32.0)
            b.refused, b.highest_term_seen = "", 99  # it has seen a newer master
            await asyncio.sleep(0.5)
            status = await admin.GetStatus(pb.GetStatusRequest())
            mb = {m.charger_id: m for m in status.members}["io7-b"]
            assert "it has seen term 99" in mb.limits_refused_reason


async def test_watch_deltas_rebuild_the_whole_status_of_each_cycle(tmp_path: Path) -> None:
    """WatchStatus with deltas (issue 15), over the real server: the reader's rebuilt status
    of each cycle equals the whole stream's of the same cycle (save unchanged members'
    ages), while a steady table travels as empty deltas; members that leave travel."""
    deltas: list[int] = []  # members per delta message

    async def take(call: AsyncIterator[pb.GroupStatus], n: int,
                   reader: DeltaReader | None = None) -> dict[int, pb.GroupStatus]:
        got: dict[int, pb.GroupStatus] = {}
        async for msg in call:
            if msg.delta:
                deltas.append(len(msg.members))
            got[msg.cycle] = msg if reader is None else reader.apply(msg)
            if len(got) >= n:
                break
        return got

    async with running_master(tmp_path) as address:
        agents = [FakeAgent(f"io7-{i}") for i in range(3)]
        async with contextlib.AsyncExitStack() as stack, admin_channel(address) as ch:
            for a in agents:
                await stack.enter_async_context(joined(address, a))
            await eventually(lambda: all(a.last_a() == 20.0 for a in agents))
            admin = pb_grpc.GroupAdminStub(ch)
            whole = admin.WatchStatus(pb.WatchStatusRequest())
            delta = admin.WatchStatus(pb.WatchStatusRequest(deltas=True))
            reader = DeltaReader()
            a, b = await asyncio.gather(take(whole, 8), take(delta, 8, reader))
            await stack.aclose()  # every agent leaves: their entries change
            after = await asyncio.wait_for(take(delta, 12, reader), 30)
            whole.cancel()
            delta.cancel()
    common = sorted(set(a) & set(b))
    assert len(common) >= 4
    for cycle in common:
        assert without_ages(b[cycle]) == without_ages(a[cycle])
    assert 0 in deltas  # a steady cycle sent no member at all
    last = after[max(after)]
    assert len(last.members) == 3 and not any(m.online for m in last.members)
