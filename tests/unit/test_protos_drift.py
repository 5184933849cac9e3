"""The wire contract: committed generated modules match the .proto, and they work on a wire.

The generated modules are committed so that importing `protos` needs no build step; this
test is what keeps them from drifting from `cluster.proto`.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_tools import protoc

from protos.io7.cluster.v1 import cluster_pb2, cluster_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO = Path("protos/io7/cluster/v1/cluster.proto")
GENERATED = ("cluster_pb2.py", "cluster_pb2.pyi", "cluster_pb2_grpc.py")
AGENT_LINK = cluster_pb2.DESCRIPTOR.services_by_name["AgentLink"].full_name
GROUP_ADMIN = cluster_pb2.DESCRIPTOR.services_by_name["GroupAdmin"].full_name


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run protoc exactly as `make protos` does, but into a scratch directory."""
    out = tmp_path_factory.mktemp("protos")
    wkt = importlib.resources.files("grpc_tools") / "_proto"
    with importlib.resources.as_file(wkt) as wkt_dir:
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{REPO_ROOT}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                str(REPO_ROOT / PROTO),
                f"-I{wkt_dir}",
            ]
        )
    assert rc == 0, f"protoc failed on {PROTO} (exit {rc}); see stderr above"
    return out / PROTO.parent


@pytest.mark.parametrize("name", GENERATED)
def test_committed_module_matches_proto(regenerated: Path, name: str) -> None:
    committed = REPO_ROOT / PROTO.parent / name
    fresh = regenerated / name
    assert committed.exists(), f"{committed.relative_to(REPO_ROOT)} is missing: run `make protos`"
    assert committed.read_bytes() == fresh.read_bytes(), (
        f"{committed.relative_to(REPO_ROOT)} is out of date with {PROTO}: run `make protos` "
        "and commit the result"
    )


def test_agent_hello_round_trips() -> None:
    hello = cluster_pb2.Hello(
        charger_id="io7-0042",
        group="site",
        firmware_version="2.4.1",
        software_version="0.1.0",
        charger_current_limit_a=32.0,
        last_seen_term=7,
        connectors=[
            cluster_pb2.ConnectorInfo(
                connector_id=1,
                wiring=cluster_pb2.ConnectorWiring(
                    l1=cluster_pb2.PHASE_L2, l2=cluster_pb2.PHASE_L3, l3=cluster_pb2.PHASE_L1
                ),
                hard_max_current_a=32.0,
                meter_description="Eastron SDM630 @ 1",
            ),
            cluster_pb2.ConnectorInfo(
                connector_id=2,
                wiring=cluster_pb2.ConnectorWiring(l1=cluster_pb2.PHASE_L1),
                hard_max_current_a=16.0,
            ),
        ],
    )
    msg = cluster_pb2.AgentMessage(hello=hello)

    back = cluster_pb2.AgentMessage.FromString(msg.SerializeToString())

    assert back == msg
    assert back.WhichOneof("kind") == "hello"
    first, second = back.hello.connectors
    assert first.wiring.l1 == cluster_pb2.PHASE_L2
    assert first.HasField("meter_description")
    # Presence survives the wire: a connector without a meter says so, not "".
    assert not second.HasField("meter_description")
    assert second.wiring.l2 == cluster_pb2.PHASE_UNSPECIFIED


def test_agent_state_presence_survives_the_wire() -> None:
    charging = cluster_pb2.ConnectorState(
        connector_id=1,
        pilot_state=cluster_pb2.PILOT_STATE_C,
        status=cluster_pb2.CONNECTOR_STATUS_CHARGING,
        error_code="NoError",
        current_a=cluster_pb2.LineValues(l1=15.9, l2=16.1, l3=0.2),
        voltage_v=cluster_pb2.LineValues(l1=231.0, l2=229.5, l3=230.2),
        active_power_w=7360.0,
        energy_import_wh=1_234_567.0,
        session_energy_wh=4200.0,
        phases_in_use=0b011,
        offered_current_a=16.0,
        max_current_a=32.0,
        wants_power=True,
        transaction_id="918",
        meter_ok=True,
    )
    no_meter = cluster_pb2.ConnectorState(
        connector_id=2, status=cluster_pb2.CONNECTOR_STATUS_AVAILABLE, error_code="NoError"
    )
    msg = cluster_pb2.AgentMessage(
        state=cluster_pb2.AgentState(
            charger_id="io7-0042", sequence=3, monotonic_ms=10_500, connectors=[charging, no_meter]
        )
    )

    back = cluster_pb2.AgentMessage.FromString(msg.SerializeToString()).state

    assert back.connectors[0] == charging
    assert back.connectors[0].HasField("current_a")
    assert not back.connectors[1].HasField("current_a")
    assert not back.connectors[1].HasField("active_power_w")
    assert back.connectors[1].phases_in_use == 0  # unknown


def test_master_limits_round_trip() -> None:
    limits = cluster_pb2.Limits(
        term=8,
        cycle=1234,
        valid_for_ms=3000,
        failsafe_current_a=6.0,
        issued_at_ms=99_000,
        connectors=[
            cluster_pb2.ConnectorLimit(
                connector_id=1,
                current_a=13.4,
                reason=cluster_pb2.LIMIT_REASON_PHASE_LIMIT,
                limiting_phase=cluster_pb2.PHASE_L2,
            ),
            cluster_pb2.ConnectorLimit(
                connector_id=2, current_a=0.0, reason=cluster_pb2.LIMIT_REASON_PAUSED_ROTATION
            ),
        ],
    )
    msg = cluster_pb2.MasterMessage(limits=limits)

    back = cluster_pb2.MasterMessage.FromString(msg.SerializeToString())

    assert back == msg
    assert back.WhichOneof("kind") == "limits"
    assert [c.current_a for c in back.limits.connectors] == [13.4, 0.0]
    assert back.limits.connectors[1].limiting_phase == cluster_pb2.PHASE_UNSPECIFIED


def test_grpc_module_exposes_services() -> None:
    for name in ("AgentLinkServicer", "AgentLinkStub", "GroupAdminServicer", "GroupAdminStub"):
        assert isinstance(getattr(cluster_pb2_grpc, name, None), type), name
    assert AGENT_LINK == "io7.cluster.v1.AgentLink"
    assert GROUP_ADMIN == "io7.cluster.v1.GroupAdmin"


class _WelcomingAgentLink(cluster_pb2_grpc.AgentLinkServicer):
    """Answers every Hello with a Welcome one term above the agent's last seen term."""

    async def Connect(
        self,
        request_iterator: AsyncIterator[cluster_pb2.AgentMessage],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[cluster_pb2.MasterMessage]:
        async for msg in request_iterator:
            if msg.WhichOneof("kind") != "hello":
                continue
            yield cluster_pb2.MasterMessage(
                welcome=cluster_pb2.Welcome(
                    term=msg.hello.last_seen_term + 1,
                    master_id="test-master",
                    settings=cluster_pb2.GroupSettings(
                        group=msg.hello.group,
                        mode=cluster_pb2.LOAD_BALANCING_MODE_DYNAMIC,
                        offline_strategy=cluster_pb2.OFFLINE_STRATEGY_MINIMISE,
                        failsafe_current_a=6.0,
                        cycle_ms=1000,
                        lease_ms=3000,
                    ),
                )
            )


@pytest.fixture
async def server_address() -> AsyncIterator[str]:
    """A real grpc.aio server on loopback with AgentLink, health and reflection."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # a taken port is refused
    cluster_pb2_grpc.add_AgentLinkServicer_to_server(_WelcomingAgentLink(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set(AGENT_LINK, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (AGENT_LINK, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def test_agent_link_over_loopback(server_address: str) -> None:
    async with grpc.aio.insecure_channel(server_address) as channel:
        call = cluster_pb2_grpc.AgentLinkStub(channel).Connect()
        await call.write(
            cluster_pb2.AgentMessage(
                hello=cluster_pb2.Hello(charger_id="io7-0042", group="site", last_seen_term=4)
            )
        )
        reply = await call.read()
        await call.done_writing()

    assert reply.WhichOneof("kind") == "welcome"
    assert reply.welcome.term == 5
    assert reply.welcome.settings.group == "site"
    assert reply.welcome.settings.lease_ms == 3000


async def test_health_and_reflection_are_served(server_address: str) -> None:
    async with grpc.aio.insecure_channel(server_address) as channel:
        health_reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=AGENT_LINK), timeout=2
        )

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=AGENT_LINK),
        ]
        replies = [r async for r in stub.ServerReflectionInfo(iter(requests), timeout=2)]

    assert health_reply.status == health_pb2.HealthCheckResponse.SERVING
    listed = {s.name for s in replies[0].list_services_response.service}
    assert {AGENT_LINK, health.SERVICE_NAME, reflection.SERVICE_NAME} <= listed
    # A stock client can fetch the schema itself, not just the names.
    files = replies[1].file_descriptor_response.file_descriptor_proto
    assert files, "reflection returned no descriptor for AgentLink"
    assert cluster_pb2.DESCRIPTOR.serialized_pb in files
