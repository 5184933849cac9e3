"""External site limits end to end (issue 12 §4), real processes and sockets on loopback.

1. Back office: a real CSMS (hw.sim.csms, in this process) sends SetChargingProfile with a
   ChargePointMaxProfile on connector 0 over a real OCPP websocket to the group's local
   controller (a real agent process); the real master process bounds every member with
   it, names it in the status and in io7ctl, and lets go when the profile's schedule ends.
2. Energy manager: a real pymodbus client writes the master's holding registers over TCP
   (the master's [ems] server in the real master process); the group's allocation drops
   to the limit, reads back in the input registers, an out-of-range write is refused with
   ILLEGAL DATA VALUE, and the limit expires when the EMS stops renewing it.

Blocking harness calls run in threads: the CSMS shares this event loop.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from pymodbus.client import AsyncModbusTcpClient

from hw.sim.csms import Csms
from master.emsserver import f32, from_f32
from tests.e2e.harness import GENEROUS_S, Cluster, cluster, free_port, master_toml

pytestmark = pytest.mark.e2e
LIMIT_A = 48.0  # 4 three-phase connectors: 12 A each
TWO = ('["L1", "L2", "L3"]', '["L2", "L3", "L1"]')


async def start(c: Cluster, *, group_keys: str = "", tables: str = "",
                ocpp_url: str = "") -> str:
    """Master (limit 48 A, `group_keys` in [group], `tables` after) and agents io7-01
    (with OCPP when `ocpp_url`) and io7-02."""
    def run() -> str:
        text = master_toml(limit_a=LIMIT_A, tls=c.tls).replace(
            "\n[group.tuning]", f"{group_keys}\n\n[group.tuning]", 1)
        (c.tmp / "master.toml").write_text(f"{text}\n{tables}")
        proc = c.spawn("master", "-m", "master.service", "--config", "master.toml")
        address = str(proc.first_json()["listening"])
        extra = f'\n[ocpp]\nenabled = true\nurl = "{ocpp_url}/ocpp"\n' if ocpp_url else ""
        c.agent("io7-01", master=address, wirings=TWO, extra=extra)
        c.agent("io7-02", master=address, wirings=TWO)
        return address
    return await asyncio.to_thread(run)


async def status(c: Cluster, address: str) -> dict[str, Any]:
    return await asyncio.to_thread(c.status, address)


def allocated(s: dict[str, Any]) -> list[float]:
    return sorted(float(k.get("allocated_a", 0.0)) for m in s.get("members", [])
                  for k in m.get("connectors", []))


async def until(c: Cluster, address: str, check: Any, what: str,
                timeout_s: float = GENEROUS_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        s = await status(c, address)
        if check(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}; last {allocated(s)}")
        await asyncio.sleep(0.2)


def profile(pid: int, limit_a: float, duration_s: int) -> dict[str, Any]:
    return {"chargingProfileId": pid, "stackLevel": 0,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A", "duration": duration_s,
                "startSchedule": datetime.now(UTC).isoformat(),
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}]}}


async def test_back_office_chargepointmaxprofile_bounds_the_whole_group(tmp_path: Path) -> None:
    async with Csms() as csms:
        with cluster(tmp_path) as c:
            address = await start(c, group_keys='local_controller = "io7-01"',
                                  ocpp_url=csms.url)
            await until(c, address, lambda s: allocated(s) == [12.0] * 4, "12 A each")
            await csms.wait_for("io7-01", "StatusNotification", count=3,
                                timeout_s=GENEROUS_S)
            done = await csms.call("io7-01", call.SetChargingProfile(
                connector_id=0, cs_charging_profiles=profile(7, 32.0, 8)))
            assert done.status == "Accepted"
            limited = await until(c, address, lambda s: allocated(s) == [8.0] * 4,
                                  "8 A each: 32 A shared by four, on every member")
            words = {p.get("limit_source") for p in limited["phases"]}
            assert len(words) == 1
            assert words.pop().startswith("back office (ChargePointMaxProfile 7) until ")
            assert [p["limit_a"] for p in limited["phases"]] == [32.0] * 3
            ext = limited["external_limits"]
            assert ext[0]["source"] == "back office (ChargePointMaxProfile 7)"
            assert int(ext[0]["valid_until_unix_ms"]) > time.time() * 1000
            text = (await asyncio.to_thread(
                subprocess.run, [*c.ctl_args(address), "status"], capture_output=True,
                text=True, timeout=30, check=True)).stdout
            assert "limited by the back office (ChargePointMaxProfile 7) until " in text
            # The schedule lasts 8 s: then the group is back at its own limit.
            back = await until(c, address, lambda s: allocated(s) == [12.0] * 4,
                               "back to 12 A each when the profile ends", timeout_s=30.0)
            assert not back.get("external_limits")
            assert {p.get("limit_source") for p in back["phases"]} == {"installed limit"}
            log = await asyncio.to_thread(c.ctl, address, "security-log")
            details = [e["detail"] for e in log["events"] if e["kind"] == "external_limit"]
            assert details[0].startswith("local controller io7-01: set: back office "
                                         "(ChargePointMaxProfile 7): 32.0/32.0/32.0 A")
            assert any(d.startswith(("local controller io7-01: withdrawn", "expired"))
                       for d in details[1:])


async def test_energy_manager_over_modbus_tcp_limits_the_group_until_it_stops_renewing(
        tmp_path: Path) -> None:
    port = free_port()
    with cluster(tmp_path) as c:
        address = await start(c, tables=f'[ems]\nenabled = true\nlisten = "127.0.0.1:{port}"\n'
                                        "validity_s = 4\n")
        await until(c, address, lambda s: allocated(s) == [12.0] * 4, "12 A each")
        ems = AsyncModbusTcpClient("127.0.0.1", port=port)
        assert await ems.connect()
        try:
            # L2 limited to 24 A, for 4 s (the default validity): every connector loads L2.
            w = await ems.write_registers(2, f32(24.0), device_id=1)
            assert not w.isError()
            limited = await until(c, address, lambda s: allocated(s) == [6.0] * 4,
                                  "6 A each: 24 A on L2 shared by four")
            l2 = next(p for p in limited["phases"] if p["phase"] == "PHASE_L2")
            assert l2["limit_a"] == 24.0
            assert l2["limit_source"].startswith("energy manager (Modbus TCP) until ")
            regs = (await ems.read_input_registers(0, count=38, device_id=1)).registers
            assert [from_f32(regs[i], regs[i + 1]) for i in (0, 2, 4)] == [48.0, 24.0, 48.0]
            assert 1 <= regs[28] <= 4 and regs[34:37] == [0, 2, 0] and regs[31:33] == [2, 2]

            refused = await ems.write_registers(0, f32(-1.0), device_id=1)
            assert refused.isError() and refused.exception_code == 3  # ILLEGAL DATA VALUE
            kept = await ems.read_holding_registers(0, count=7, device_id=1)
            assert kept.registers == [*f32(48.0), *f32(24.0), *f32(48.0), 4]
        finally:
            ems.close()
        # No renewal: 4 s later the group is back at its own limit.
        await until(c, address, lambda s: allocated(s) == [12.0] * 4,
                    "back to 12 A each when the EMS stops renewing", timeout_s=30.0)
        log = await asyncio.to_thread(c.ctl, address, "security-log")
        details = [e["detail"] for e in log["events"] if e["kind"] == "external_limit"]
        assert details[0].startswith("energy manager: set: energy manager (Modbus TCP): "
                                     "48.0/24.0/48.0 A")
        assert details[-1].startswith("expired: energy manager (Modbus TCP)")
