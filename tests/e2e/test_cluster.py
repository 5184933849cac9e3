"""The cluster end to end: master, agents and the CT kit simulator as real processes on
loopback, gRPC between them, Modbus TCP to the CT kit, io7ctl to look."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import cluster, ctl_args, free_port, last_offers, wait_for

pytestmark = pytest.mark.e2e


def per_phase_ok(status: dict[str, Any]) -> bool:
    return all(p["allocated_a"] <= p["available_a"] + 1e-6 <= p["limit_a"] + 1e-6
               for p in status["phases"])


def offers_are(agent: Any, amps: float, source: str | None = None) -> bool:
    latest = last_offers(agent)
    return len(latest) == 2 and all(
        e["current_a"] == amps and (source is None or e["source"] == source)
        for e in latest.values())


def test_scenario_b_follows_the_ct_and_survives_a_master_kill(tmp_path: Path) -> None:
    ct_port = free_port()
    with cluster(tmp_path) as c:
        # 60 A per phase, the building draws 12 A, then 24 A from about 20 s in.
        c.ct_sim(ct_port, base_a=12.0, step_a=12.0, step_in_s=20.0)
        master, address = c.master(limit_a=60, mode="dynamic", ct_port=ct_port)
        agents = [c.agent(f"io7-{i}", master=address) for i in (1, 2)]
        # Four three-phase EVs share 60 - 12 = 48 A: 12 A each.
        wait_for(lambda: all(offers_are(a, 12.0, "master") for a in agents), "12 A each")
        status = c.status(address)
        assert {m["charger_id"] for m in status["members"] if m["online"]} == {"io7-1", "io7-2"}
        assert per_phase_ok(status)
        # The building load steps to 24 A: 36 A shared, 9 A each. Counted in cycles from
        # the master's own status stream (io7ctl watch): the allocation follows within
        # 2 cycles of the first CT reading that sees the step.
        watched = c.watch(address, until=lambda st: all(
            p["allocated_a"] <= 36.0 + 1e-6 for p in st["phases"]), timeout_s=30.0)
        seen_at = min(int(st["cycle"]) for st in watched
                      if all(p.get("ct_a", 0.0) >= 23.9 for p in st["phases"]))
        safe_at = min(int(st["cycle"]) for st in watched
                      if all(p["allocated_a"] <= 36.0 + 1e-6 for p in st["phases"]))
        assert any(p.get("ct_a", 0.0) < 13.0 for p in watched[0]["phases"]), "saw the step"
        assert safe_at - seen_at <= 2
        assert all(per_phase_ok(st) for st in watched)
        wait_for(lambda: all(offers_are(a, 9.0) for a in agents), "9 A after step")
        # kill -9 the master: every agent falls back to the fail-safe (Maximise: 0 A).
        master.kill9()
        wait_for(lambda: all(offers_are(a, 0.0, "failsafe") for a in agents),
                 "fail-safe after the lease", timeout_s=5.0)
        # Restart it on the same address and database: a new term, the same members.
        _, address2 = c.master(limit_a=60, mode="dynamic", ct_port=ct_port,
                                     listen=address, name="master2")
        assert address2 == address
        wait_for(lambda: all(offers_are(a, 9.0, "master") for a in agents), "limits resume")
        status = c.status(address)
        assert int(status["term"]) == 2
        assert {m["charger_id"] for m in status["members"]} == {"io7-1", "io7-2"}
        # Remove a charger for good. "Rebuild the group" naming nobody forgets nothing:
        # the master cannot tell it from a cut link, so io7-2 keeps its reservation.
        next(a for a in agents if a.name == "io7-2").kill9()
        wait_for(lambda: any(not m["online"] for m in c.status(address)["members"]),
                 "io7-2 offline")
        kept = c.ctl(address, "rebuild")
        assert (kept["removed_charger_ids"], kept["kept_charger_ids"],
                kept["offline_kept_charger_ids"]) == ([], ["io7-1", "io7-2"], ["io7-2"])
        told = rebuild(address, "--removed", "io7-1", "--removed", "io7-9")
        assert told.returncode == 1, told.stderr  # a stranger: refused whole
        assert "'io7-9' not a member of group" in told.stderr
        told = rebuild(address, "--removed", "io7-1")  # connected: refused, kept
        assert told.returncode == 1
        assert "io7-1 is connected, so it was not removed" in told.stderr
        assert "offline, still reserved: io7-2" in told.stdout
        assert "io7ctl rebuild --removed ID" in told.stdout
        assert {m["charger_id"] for m in c.status(address)["members"]} == {"io7-1", "io7-2"}
        # The installer confirms io7-2 was physically removed: now it is forgotten.
        rebuilt = c.ctl(address, "rebuild", "--removed", "io7-2")
        assert (rebuilt["removed_charger_ids"], rebuilt["kept_charger_ids"]) == (
            ["io7-2"], ["io7-1"])
        # GetStatus is the last cycle's picture: the next cycle no longer lists io7-2.
        wait_for(lambda: [m["charger_id"] for m in c.status(address)["members"]] == ["io7-1"],
                 "io7-2 forgotten")


def rebuild(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`io7ctl rebuild` as a person runs it (text, exit code kept)."""
    return subprocess.run([*ctl_args(address), "rebuild", *args],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("strategy", "others_get", "reason"), [
    ("zero", 0.0, "offline_strategy"),
    ("minimise", 6.0, "offline_strategy"),
    ("maximise", 16.0, "charger_limit"),
])
def test_a_killed_agent_triggers_the_offline_strategy(
    tmp_path: Path, strategy: str, others_get: float, reason: str
) -> None:
    with cluster(tmp_path) as c:
        _, address = c.master(limit_a=48, strategy=strategy)
        a1, a2 = c.agent("io7-1", master=address), c.agent("io7-2", master=address)
        wait_for(lambda: offers_are(a1, 12.0) and offers_are(a2, 12.0), "12 A each")
        a2.kill9()
        wait_for(lambda: offers_are(a1, others_get), f"{strategy}: {others_get} A",
                 timeout_s=10.0)
        status = c.status(address)
        gone = next(m for m in status["members"] if m["charger_id"] == "io7-2")
        assert not gone["online"]
        kept = next(m for m in status["members"] if m["charger_id"] == "io7-1")
        assert {conn["reason"] for conn in kept["connectors"]} == {
            f"LIMIT_REASON_{reason.upper()}"}
        assert per_phase_ok(status)


def test_a_silent_ct_kit_falls_back_to_the_static_limit_and_recovers(tmp_path: Path) -> None:
    ct_port = free_port()
    with cluster(tmp_path) as c:
        # 60 A, the building draws 20 A: 40 A, but one charger takes at most its Charger
        # Current Limit (32 A): 16 A per socket. Without the CT: 30 A fallback, 15 A each.
        ct = c.ct_sim(ct_port, base_a=20.0)
        _, address = c.master(limit_a=60, mode="dynamic", ct_port=ct_port)
        agent = c.agent("io7-1", master=address)
        wait_for(lambda: offers_are(agent, 16.0), "16 A per socket")
        ct.kill9()  # the kit goes silent
        wait_for(lambda: c.status(address)["ct_status"] == "CT_STATUS_LOST", "CT lost")
        status = c.status(address)
        assert "meter read timeout" in status["ct_fault"]
        assert [p["limit_a"] for p in status["phases"]] == [30.0, 30.0, 30.0]
        wait_for(lambda: offers_are(agent, 15.0), "fallback limit shared")
        c.ct_sim(ct_port, base_a=20.0, name="ct2")  # it comes back
        wait_for(lambda: c.status(address)["ct_status"] == "CT_STATUS_OK", "CT back")
        assert c.status(address)["ct_fault"] == ""
        wait_for(lambda: offers_are(agent, 16.0), "dynamic limit again")


def test_scenario_c_a_group_per_phase(tmp_path: Path) -> None:
    ct_port = free_port()
    with cluster(tmp_path) as c:
        c.ct_sim(ct_port, base_a=7.0)
        _, address = c.master(limit_a=32, mode="dynamic", ct_port=ct_port, phases='["L2"]',
                              group="garage-L2")
        agents = [c.agent(f"io7-{i}", master=address, group="garage-L2",
                          wirings=('["L2"]', '["L2"]')) for i in (1, 2)]
        # 32 - 7 = 25 A on L2 for four single-phase sockets (4 x 6 A + 1 A resume
        # hysteresis fits): 6.2 A each.
        wait_for(lambda: all(offers_are(a, 6.2) for a in agents), "6.2 A each on L2")
        status = c.status(address)
        assert [p["phase"] for p in status["phases"]] == ["PHASE_L2"]
        assert per_phase_ok(status)


def test_scenario_a_agent_only_with_its_own_ct_clamps(tmp_path: Path) -> None:
    ct_port = free_port()
    own = f"""
[agent_only]
site_limit_a = 32
mode = "dynamic"
margin_a = 0
fallback_limit_a = 16
[agent_only.ct]
enabled = true
type = "site"
clamps = [1, 2, 3]
rated_a = 100
tcp = "127.0.0.1:{ct_port}"
timeout_s = 0.3
retries = 0
"""
    with cluster(tmp_path) as c:
        c.ct_sim(ct_port, base_a=10.0)
        agent = c.agent("io7-solo", master=None, extra=own)
        # Site limit 32 A, the building draws 10 A: 22 A for two sockets, 11 A each.
        wait_for(lambda: offers_are(agent, 11.0, "master"), "11 A each from its own clamps")
