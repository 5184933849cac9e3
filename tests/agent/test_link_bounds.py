"""A fake master cannot raise an agent's fail-safe current (issue 10).

A real grpc.aio server in this test plays the master: it answers the real agent (its whole
run loop, the simulated board, a real gRPC channel on loopback) with a Welcome and Limits
whose fail-safe current is 80 A, then with honest ones. The agent keeps its own bounded
fail-safe, says why in AgentState, logs a warning, and obeys again once the master is sane.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import structlog

from agent.config import AgentConfig, load_agent_config
from agent.service import Agent
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc

WAIT_S = 10.0  # generous: the machine is shared

AGENT_TOML = """
[charger]
id = "io7-bounds-01"
group = "garage"
current_limit_a = 32
[connectors.1]
wiring = ["L1", "L2", "L3"]
[master]
address = "{address}"
initial_failsafe_a = 6
[tls]
plaintext = true  # the fake master here is plaintext
[sim]
evs = "plugged"
[state]
dir = "state"
"""


@dataclass
class Script:
    """What the fake master says on each stream: (failsafe A, lease ms, term, current A)."""

    failsafe_a: float = 80.0
    lease_ms: int = 3000
    term: int = 7
    current_a: float = 32.0
    connector_id: int = 1
    drop: bool = False  # end the stream: the agent reconnects
    hellos: list[pb.Hello] = field(default_factory=list)
    states: list[pb.AgentState] = field(default_factory=list)


class FakeMaster(pb_grpc.AgentLinkServicer):
    """Welcome, then Limits every 0.2 s, as `script` says at that moment."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def Connect(self, request_iterator: Any, context: Any) -> AsyncIterator[
            pb.MasterMessage]:
        s = self.script
        first = await anext(aiter(request_iterator))
        s.hellos.append(first.hello)

        async def read() -> None:
            async for msg in request_iterator:
                s.states.append(msg.state)

        reader = asyncio.create_task(read())
        try:
            yield pb.MasterMessage(welcome=pb.Welcome(
                term=s.term, master_id="fake-master", settings=pb.GroupSettings(
                    group="garage", failsafe_current_a=s.failsafe_a, cycle_ms=200,
                    lease_ms=s.lease_ms)))
            cycle = 0
            while not s.drop:
                cycle += 1
                yield pb.MasterMessage(limits=pb.Limits(
                    term=s.term, cycle=cycle, valid_for_ms=s.lease_ms,
                    failsafe_current_a=s.failsafe_a,
                    connectors=[pb.ConnectorLimit(connector_id=s.connector_id,
                                                current_a=s.current_a)]))
                await asyncio.sleep(0.2)
        finally:
            reader.cancel()


@asynccontextmanager
async def fake_master(script: Script) -> AsyncIterator[tuple[str, grpc.aio.Server]]:
    server = grpc.aio.server()
    pb_grpc.add_AgentLinkServicer_to_server(FakeMaster(script), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        await server.stop(0)


@asynccontextmanager
async def running(config: AgentConfig) -> AsyncIterator[Agent]:
    agent = Agent(config)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def latest(script: Script) -> pb.AgentState:
    return script.states[-1] if script.states else pb.AgentState()


async def test_a_fake_master_cannot_set_an_80_a_failsafe(tmp_path: Path) -> None:
    script = Script()
    async with fake_master(script) as (address, _):
        path = tmp_path / "agent.toml"
        path.write_text(AGENT_TOML.format(address=address))
        with structlog.testing.capture_logs() as logs:
            async with running(load_agent_config(path)) as agent:
                await eventually(lambda: len(script.states) >= 8, "eight AgentStates")
                state = latest(script)
                assert "fail-safe current 80 A" in state.limits_refused_reason
                assert "0 or 6-6 A" in state.limits_refused_reason
                assert (state.lease_ok, state.term_applied, state.highest_term_seen) == (
                    False, 0, 0)
                assert agent.applier.failsafe_current_a == 6.0
                assert all(s.connectors[0].offered_current_a <= 6.0 for s in script.states)
                assert script.hellos[0].last_seen_term == 0

                script.failsafe_a = 6.0  # the master is fixed: Limits are obeyed again
                await eventually(lambda: latest(script).lease_ok, "an obeyed lease")
                state = latest(script)
                assert (state.limits_refused_reason, state.highest_term_seen,
                        state.term_applied) == ("", 7, 7)

                script.lease_ms = 60_000  # a minute's lease: refused too
                await eventually(lambda: "lease 60 s" in latest(script).limits_refused_reason,
                                 "the lease refused")
                script.lease_ms, script.term, script.drop = 3000, 5, True  # a new stream
                await eventually(lambda: len(script.hellos) == 2, "a reconnect")
                script.drop = False
                assert script.hellos[1].last_seen_term == 7
                await eventually(lambda: "term 5 is older than term 7 seen before"
                                 in latest(script).limits_refused_reason, "the term refused")
                assert latest(script).highest_term_seen == 7
        warnings = [e for e in logs if e["log_level"] == "warning" and "refused" in e["event"]]
    first = warnings[0]
    assert (first["charger_id"], first["master_id"], first["value"], first["bound"]) == (
        "io7-bounds-01", "fake-master", 80.0, "0 or 6-6 A"), first


async def test_limits_for_a_connector_it_lacks_are_refused_and_the_link_survives(
        tmp_path: Path) -> None:
    script = Script(failsafe_a=6.0, connector_id=3)
    async with fake_master(script) as (address, _):
        path = tmp_path / "agent.toml"
        path.write_text(AGENT_TOML.format(address=address))
        async with running(load_agent_config(path)):
            await eventually(lambda: "connectors [3]" in latest(script).limits_refused_reason,
                             "the unknown connector refused")
            assert not latest(script).lease_ok
            script.connector_id = 1
            await eventually(lambda: latest(script).lease_ok, "an obeyed lease")
            assert latest(script).limits_refused_reason == ""
            assert len(script.hellos) == 1  # the same stream throughout
