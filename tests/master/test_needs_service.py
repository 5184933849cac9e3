"""A real `master.service.Master` learns a card's habit from the sessions its reports show
end, and the engine then gives that card's car more of a tight group than an unknown
card's (issue 12 §3; master/needs.py). With nothing known the shares are equal, as today.

Virtual monotonic and wall clocks, AgentStates decoded by the master's own wire decoder.
The master has no time zone setting: it reads the system's local time, so the wall
times below are local times of a March day without a DST change.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from pathlib import Path

from master import wire
from master.config import load_master_config
from master.service import Master
from protos.io7.cluster.v1 import cluster_pb2 as pb

P, Q = "a1b2c3d4e5f60718", "0f1e2d3c4b5a6978"
TOML = """
[master]
id = "needs"
listen = "127.0.0.1:0"
state_db = "master.sqlite3"

[group]
name = "garage"
mode = "static"
limit_a = 24
closed = false

[tls]
plaintext = true
"""
Conn = tuple[int, str, float, float]  # status, pseudonym, session Wh, draw A


class Rig:
    """One three-phase double charger "c1" reporting to a Master, a cycle per step."""

    def __init__(self, tmp: Path) -> None:
        (tmp / "master.toml").write_text(TOML)
        self.now, self.unix = 1000.0, local(3, 7)
        self.master = Master(load_master_config(tmp / "master.toml"), clock=lambda: self.now)
        self.master.site_limits.wall = lambda: self.unix
        self.decoder, self.seq = wire.ReportDecoder(), 0
        wiring = pb.ConnectorWiring(l1=pb.PHASE_L1, l2=pb.PHASE_L2, l3=pb.PHASE_L3)
        hello = pb.Hello(charger_id="c1", group="garage", charger_current_limit_a=63.0,
                         connectors=[pb.ConnectorInfo(connector_id=k, hard_max_current_a=32.0,
                                                      wiring=wiring) for k in (1, 2)])
        self.master.control.member_connected(wire.member_from_hello(hello), self.now)
        self.master.outbox["c1"] = asyncio.Queue(maxsize=4)

    async def step(self, unix: float, c1: Conn, c2: Conn) -> dict[int, float]:
        """Move both clocks to `unix`, report, cycle; the Limits per connector."""
        self.now += max(1.0, unix - self.unix)
        self.unix = max(unix, self.unix + 1.0)
        self.seq += 1
        state = pb.AgentState(charger_id="c1", sequence=self.seq,
                              monotonic_ms=int(self.now * 1000))
        for k, (status, tag, wh, draw) in ((1, c1), (2, c2)):
            state.connectors.add(connector_id=k, status=status, tag_pseudonym=tag,
                                 session_energy_wh=wh, offered_current_a=draw,
                                 current_a=pb.LineValues(l1=draw, l2=draw, l3=draw),
                                 voltage_v=pb.LineValues(l1=230.0, l2=230.0, l3=230.0),
                                 phases_in_use=0b111 if draw else 0, max_current_a=32.0,
                                 wants_power=status != AVAILABLE, meter_ok=True)
        assert self.master.control.report(self.decoder.decode(state, self.now)) is None
        result = await self.master.run_cycle()
        return {lim.connector_id: lim.current_a for lim in result.limits["c1"]}

    async def charge(self, day: int, tag1: str, tag2: str) -> dict[int, float]:
        """Two cars plug in at 08:00 and draw what they are offered for ten minutes."""
        got = {1: 0.0, 2: 0.0}
        for s in range(600):
            got = await self.step(local(day, 8) + s, (CHARGING, tag1, 0.0, got[1]),
                                  (CHARGING, tag2, 0.0, got[2]))
        return got


def local(day: int, hh: int, mm: int = 0) -> float:
    return datetime(2025, 3, day, hh, mm).timestamp()  # naive: the system's local time


AVAILABLE, CHARGING = pb.CONNECTOR_STATUS_AVAILABLE, pb.CONNECTOR_STATUS_CHARGING
IDLE: Conn = (AVAILABLE, "", 0.0, 0.0)


async def test_a_known_urgent_card_gets_more_than_an_unknown_one(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        for day in (3, 4, 5):  # card P charges 20 kWh on connector 1 and leaves at 10:00
            await rig.step(local(day, 8), (CHARGING, P, 0.0, 0.0), IDLE)
            await rig.step(local(day, 9, 59), (CHARGING, P, 20_000.0, 0.0), IDLE)
            await rig.step(local(day, 10), IDLE, IDLE)
        rows = rig.master.habits.store.db.execute(
            "SELECT departure_tod_s, energy_wh FROM card_sessions").fetchall()
        assert rows == [(36_000.0, 20_000.0)] * 3
        # Day 6: P's car (due to leave at 10:00 with 20 kWh) and an unknown card's share
        # 24 A: 6 A each, the other 12 A split w : 1, w = 1 + need_a / 32 A (sharing.py).
        got = await rig.charge(6, P, Q)
        hours = (local(6, 10) - rig.unix) / 3600.0  # 1.83 h at the last cycle
        w = 1.0 + 20_000.0 / (hours * 230.0 * 3) / 32.0  # 15.8 A of 32 A: 1.49
        assert got[1] > got[2] >= 6.0 and got[1] + got[2] <= 24.0
        assert got[1] == math.floor((6.0 + 12.0 * w / (1.0 + w)) * 10.0) / 10.0  # 13.1
        await rig.step(local(6, 12), IDLE, IDLE)  # both leave
        unknown = await rig.charge(7, Q, "")  # P not there: nothing known, as today
        assert unknown == {1: 12.0, 2: 12.0}
    finally:
        rig.master.close()
