"""A Charger Current Limit changed while running arrives in the agent's AgentState
(`charger_current_limit_a`), not in a fresh Hello: the master takes it from the report,
refuses one outside 6-63 A with the reason, and keeps the Hello's for an older agent that
does not send it. The member stays online throughout (a reopened stream would not)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.service import Agent
from master.control import CycleResult
from master.reports import MemberReport
from master.wire import ReportDecoder, report_from_state
from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.e2e.harness import agent_toml
from tests.master.support import Rig, amps, conn_report, group, member

A, B = member("A"), member("B")
BOTH = (conn_report(1), conn_report(2))  # one tuple, sent again and again (rule 7)


def start() -> Rig:
    rig = Rig.start(group(limit_a=100.0), [A, B])
    while rig.now < 4:  # past the start-of-term hold (one lease, 3 s)
        rig.step(reports={"B": B})
        rig.control.report(report(rig, "A"))
    return rig


def report(rig: Rig, cid: str, limit_a: float | None = None) -> MemberReport:
    rig.seq[cid] = rig.seq.get(cid, 0) + 1
    return MemberReport(charger_id=cid, sequence=rig.seq[cid], received_at_s=rig.now,
                        connectors=BOTH, charger_current_limit_a=limit_a)


def cycle(rig: Rig, a_limit: float | None) -> CycleResult:
    rig.now += 1
    rig.send_default(B)
    assert rig.control.report(report(rig, "A", a_limit)) is None
    return rig.control.cycle(rig.now)


def a_total(result: CycleResult) -> float:
    return sum(v for (cid, _), v in amps(result).items() if cid == "A")


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "rebuilt"])
def test_a_reported_limit_caps_the_charger_at_once_and_it_stays_online(
        incremental: bool) -> None:
    rig = start()
    assert a_total(cycle(rig, None)) == 50.0  # 100 A over four sockets: 25 A each
    for limit_a, total in ((20.0, 20.0), (20.0, 20.0), (40.0, 40.0), (63.0, 50.0)):
        if not incremental:
            rig.control.forget_caches()
        result = cycle(rig, limit_a)
        assert a_total(result) == total, (limit_a, amps(result))
        assert all(m.online for m in result.status.members)
        a = next(m for m in rig.control.members if m.charger_id == "A")
        assert a.charger_current_limit_a == limit_a  # the status shows the one in force


@pytest.mark.parametrize("bad", [5.9, 63.5, math.nan, math.inf, -10.0])
def test_a_limit_outside_6_to_63_a_is_refused_with_the_reason(bad: float) -> None:
    rig = start()
    rig.now += 1
    problem = rig.control.report(report(rig, "A", bad))
    assert problem == f"charger_current_limit_a={bad!r} is outside [6, 63] (manual 6.3)"
    result = rig.control.cycle(rig.now)
    a = next(m for m in result.status.members if m.charger_id == "A")
    assert not a.online and problem in a.offline_reason
    assert a_total(cycle(rig, 10.0)) == 10.0  # a valid one brings it back


def test_an_older_agent_without_the_field_keeps_the_hellos_limit() -> None:
    rig = Rig.start(group(limit_a=100.0), [member("A", limit_a=20.0), B])
    while rig.now < 4:
        rig.step(reports={"B": B})
        rig.control.report(report(rig, "A"))
    result = cycle(rig, None)
    assert a_total(result) == 20.0 and all(m.online for m in result.status.members)


def test_the_master_reads_the_limit_from_the_wire() -> None:
    state = pb.AgentState(charger_id="A", sequence=1, connectors=[
        pb.ConnectorState(connector_id=1)])
    assert report_from_state(state, 1.0).charger_current_limit_a is None  # an older agent
    decoder = ReportDecoder()
    first = decoder.decode(state, 1.0)
    state.charger_current_limit_a = 10.0
    again = decoder.decode(state, 2.0)
    assert again.connectors is first.connectors  # the connectors repeat ...
    assert again.charger_current_limit_a == 10.0  # ... the limit is read all the same
    assert report_from_state(state, 1.0).charger_current_limit_a == 10.0


def test_the_agent_reports_a_changed_limit_without_reopening_its_stream(
        tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(agent_toml("io7-1", master="127.0.0.1:9", tls=False, connectors=(
        '[connectors.1]\nwiring = ["L1", "L2", "L3"]\n')).replace(
        'dir = "."', f'dir = "{tmp_path}"'))
    agent = Agent(load_agent_config(path))
    try:
        asyncio.run(agent.step())
        assert agent.state(agent.clock()).charger_current_limit_a == 32.0
        agent.set_charger_limit(10.0)
        assert agent.state(agent.clock()).charger_current_limit_a == 10.0
        assert agent.link is not None and not agent.link._moved.is_set()  # no reconnect
    finally:
        agent.audit.close()
