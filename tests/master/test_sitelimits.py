"""External limits in the master's shell (issue 12 §4): the local controller's reports,
the security log, the status and io7ctl's words, the energy manager's register map."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pymodbus.constants import ExcCodes

from hw.securitylog import SecurityLog
from master import wire
from master.ctl import render
from master.emsserver import SOURCE, EmsRegisters, f32, from_f32
from master.externallimits import ExternalLimit
from master.mqttsetpoint import SOURCE as MQTT_SOURCE
from master.sitelimits import BACK_OFFICE, EMS, SiteLimits
from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.master.support import Rig, group, member

T0 = 1_750_000_000.0  # a wall clock, Unix s


class Wall:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def state(limit_a: float | None, until_ms: int = 0,
          source: str = "back office (ChargePointMaxProfile 3)") -> pb.AgentState:
    msg = pb.AgentState(charger_id="io7-01")
    if limit_a is not None:
        msg.station_limit.CopyFrom(pb.ExternalLimit(limit_a=limit_a, source=source,
                                                    valid_until_unix_ms=until_ms))
    return msg


def site(tmp_path: Path) -> tuple[SiteLimits, Wall, SecurityLog]:
    wall, log = Wall(), SecurityLog(tmp_path / "sec.jsonl")
    return SiteLimits(security=log, local_controller="io7-01", grace_s=3.0, wall=wall), wall, log


def test_only_the_local_controller_bounds_the_group(tmp_path: Path) -> None:
    s, _, _ = site(tmp_path)
    s.from_agent("io7-02", state(10.0))
    assert s.now()[0].cap_a is None
    s.from_agent("io7-01", state(10.0))
    assert s.now()[0].cap_a == (10.0, 10.0, 10.0)


def test_kept_while_silent_until_its_end_plus_grace_then_expired_and_logged(
        tmp_path: Path) -> None:
    s, wall, log = site(tmp_path)
    s.from_agent("io7-01", state(16.0, until_ms=int((T0 + 60) * 1000)))
    wall.t = T0 + 62.9  # offline since: the last limit holds, grace included
    assert s.now()[0].cap_a == (16.0, 16.0, 16.0)
    wall.t = T0 + 63.0
    assert s.now()[0].cap_a is None
    kinds = [(e.kind, e.detail) for e in log.tail(10)]
    assert kinds[0][0] == "external_limit" and "local controller io7-01: set: back office " \
        "(ChargePointMaxProfile 3): 16.0/16.0/16.0 A" in kinds[0][1]
    assert kinds[1][1].startswith("expired: back office (ChargePointMaxProfile 3)")
    assert len(kinds) == 2


def test_a_state_without_a_profile_withdraws_it_and_repeats_log_nothing(tmp_path: Path) -> None:
    s, _, log = site(tmp_path)
    for _ in range(5):
        s.from_agent("io7-01", state(16.0))
    s.from_agent("io7-01", state(None))
    assert s.now()[0].cap_a is None
    assert [e.detail.split(":")[1].strip() for e in log.tail(10)] == ["set", "withdrawn"]


@pytest.mark.parametrize("bad", [math.nan, -5.0, math.inf, 1e9])
def test_an_absurd_back_office_limit_is_refused_and_the_last_one_stays(
        tmp_path: Path, bad: float) -> None:
    s, _, _ = site(tmp_path)
    s.from_agent("io7-01", state(20.0))
    s.from_agent("io7-01", state(bad))
    assert s.now()[0].cap_a == (20.0, 20.0, 20.0)


def test_status_names_the_source_and_lists_the_limits_io7ctl_says_why(tmp_path: Path) -> None:
    s, _, _ = site(tmp_path)
    end = T0 + 3600
    s.from_agent("io7-01", state(16.0, until_ms=int(end * 1000)))
    m = member("io7-01", connectors=1)
    rig = Rig.start(group(limit_a=63.0), [m])
    for _ in range(5):
        rig.now += 1.0
        rig.send_default(m)
        external, now_unix = s.now()
        result = rig.control.cycle(rig.now, external, now_unix)
    view = result.status
    assert [p.limit_a for p in view.phases] == [16.0, 16.0, 16.0]
    assert all(p.limit_source.startswith("back office (ChargePointMaxProfile 3) until ")
               for p in view.phases)
    assert result.limits["io7-01"][0].current_a == 16.0
    msg = wire.group_status(view, master_id="m", cycle_duration_ms=1.0)
    assert msg.external_limits[0].source == "back office (ChargePointMaxProfile 3)"
    assert msg.external_limits[0].valid_until_unix_ms == int(end * 1000)
    assert [(p.phase, p.limit_a) for p in msg.external_limits[0].phases] == [
        (pb.PHASE_L1, 16.0), (pb.PHASE_L2, 16.0), (pb.PHASE_L3, 16.0)]
    text = render(msg)
    assert "limited by the back office (ChargePointMaxProfile 3) until " in text
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if x.startswith("io7-01"))
    row = " ".join([lines[at], *(x.strip() for x in lines[at + 1:at + 4] if x.startswith(" "))])
    assert "limited by phase L1 of the group (limited by the back office" in row  # wrapped


def test_without_external_limits_the_status_names_the_groups_own_limit() -> None:
    m = member("io7-01", connectors=1)
    rig = Rig.start(group(limit_a=63.0), [m])
    rig.control.set_limit(40.0)
    result = rig.step(reports={"io7-01": m})
    assert {p.limit_source for p in result.status.phases} == {"set by io7ctl"}
    assert "limited by" not in render(wire.group_status(result.status, master_id="m",
                                                        cycle_duration_ms=1.0))


# --- the energy manager's registers (master/emsserver.py rules 1-4) ---------------------

def regs() -> EmsRegisters:
    return EmsRegisters(installed_limit_a=63.0, validity_s=60)


def test_float32_is_big_endian_high_word_first() -> None:
    assert f32(16.0) == [0x4180, 0x0000]
    assert from_f32(0x4180, 0) == 16.0


def test_a_write_arms_all_three_currents_for_the_validity() -> None:
    r = regs()
    done = r.write(0, [*f32(20.0), *f32(25.0), *f32(30.0), 120], T0)
    assert done.limit == ExternalLimit(source=SOURCE, limit_a=(20.0, 25.0, 30.0),
                                       valid_until_unix_s=T0 + 120)
    again = r.write(0, f32(10.0), T0 + 50)  # L1 only: L2, L3 and the validity as they stand
    assert again.limit == ExternalLimit(source=SOURCE, limit_a=(10.0, 25.0, 30.0),
                                        valid_until_unix_s=T0 + 170)


def test_untouched_phases_start_at_the_installed_limit_and_the_default_validity() -> None:
    done = regs().write(2, f32(12.0), T0)
    assert done.limit == ExternalLimit(source=SOURCE, limit_a=(63.0, 12.0, 63.0),
                                       valid_until_unix_s=T0 + 60)


def test_validity_zero_withdraws() -> None:
    r = regs()
    r.write(0, f32(10.0), T0)
    done = r.write(6, [0], T0 + 1)
    assert (done.refused, done.limit) == ("", None)


@pytest.mark.parametrize(("name", "address", "values", "code"), [
    ("NaN", 0, f32(math.nan), ExcCodes.ILLEGAL_VALUE),
    ("infinite", 2, f32(math.inf), ExcCodes.ILLEGAL_VALUE),
    ("negative", 4, f32(-1.0), ExcCodes.ILLEGAL_VALUE),
    ("above the installed limit", 0, f32(63.5), ExcCodes.ILLEGAL_VALUE),
    ("half a float", 1, [0x4180], ExcCodes.ILLEGAL_ADDRESS),
    ("half a float at the end", 0, [0x4180, 0, 0x4180], ExcCodes.ILLEGAL_ADDRESS),
    ("past the map", 6, [1, 2], ExcCodes.ILLEGAL_ADDRESS),
])
def test_out_of_range_is_refused_and_nothing_changes(name: str, address: int,
                                                     values: list[int], code: ExcCodes) -> None:
    r = regs()
    before = list(r.holding)
    done = r.write(address, values, T0)
    assert done.refused and done.code is code and done.limit is None
    assert r.holding == before


def test_input_registers_carry_the_groups_state() -> None:
    status = pb.GroupStatus(cycle=70000, ct_status=pb.CT_STATUS_OK)
    status.phases.add(phase=pb.PHASE_L1, limit_a=16.0, configured_limit_a=40.0, ct_a=-3.5,
                      allocated_a=12.0, available_a=14.0, limit_source=f"{SOURCE} until 18:00")
    status.phases.add(phase=pb.PHASE_L2, limit_a=40.0, configured_limit_a=40.0,
                      limit_source="set by io7ctl")
    status.phases.add(phase=pb.PHASE_L3, limit_a=20.0, configured_limit_a=40.0,
                      limit_source=f"{MQTT_SOURCE} until 17:30", allocated_a=0.0)
    m = status.members.add(charger_id="a", online=True)
    m.connectors.add(connector_id=1, status=pb.CONNECTOR_STATUS_CHARGING)
    m.connectors.add(connector_id=2, reason=pb.LIMIT_REASON_PAUSED_NO_ROOM)
    status.members.add(charger_id="b", online=False)
    ems = ExternalLimit(source=SOURCE, limit_a=(16.0, 63.0, 63.0), valid_until_unix_s=T0 + 41.5)
    r = regs().inputs(status, ems, T0)
    floats = [from_f32(r[i], r[i + 1]) for i in range(0, 28, 2)]
    assert floats[:3] == [16.0, 40.0, 20.0]
    assert floats[3] == -3.5 and math.isnan(floats[4]) and math.isnan(floats[5])
    assert floats[6:12] == [12.0, 0.0, 0.0, 14.0, 0.0, 0.0]
    assert floats[12:14] == [63.0, 40.0]
    assert r[28:38] == [42, 1, 1, 1, 2, 1, 2, 0, 3, 70000 % 65536]
    assert EMS != BACK_OFFICE
