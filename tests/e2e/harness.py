"""Real processes on loopback for end-to-end tests: a CT kit simulator (Modbus TCP), a
master, agents; each with its log in a temp folder. Timings are short (250 ms cycles,
1 s lease) and every wait has a generous bound: the machine is shared."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PY = sys.executable
GENEROUS_S = 15.0

MASTER_TOML = """
[master]
id = "e2e-master"
listen = "127.0.0.1:0"
state_db = "members.sqlite3"
cycle_ms = 250
lease_cycles = 4

[group]
name = "{group}"
phases = {phases}
mode = "{mode}"
limit_a = {limit_a}
{fallback}
ct_placement = "other_loads"
margin_a = 0
offline_strategy = "{strategy}"

[group.tuning]
settle_s = 0.5
min_pause_s = 0.0
ramp_up_a = 80.0
demand_cap_after_s = 3600.0
resume_hysteresis_a = 1.0  # the worked numbers of the e2e tests; README has the defaults
{ct}
"""

CT_TABLE = """
[ct]
enabled = true
rated_a = 100
timeout_s = 0.3
retries = 0
stale_after_s = 0.8
lost_after_s = 2.0
[ct.clamps]
{clamps}
[ct.tcp]
host = "127.0.0.1"
port = {port}
"""

AGENT_TOML = """
[charger]
id = "{cid}"
group = "{group}"
current_limit_a = 32
{connectors}
{master}
[sim]
evs = "plugged"
[state]
dir = "."
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def first_json(self, timeout_s: float = GENEROUS_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.out.read_text() if self.out.exists() else ""
            if text.strip():
                return dict(json.loads(text.splitlines()[0]))
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.err.read_text()[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} printed nothing in {timeout_s} s")

    def events(self, event: str) -> list[dict[str, Any]]:
        found = []
        for line in self.err.read_text().splitlines():
            if line.startswith("{") and f'"event": "{event}"' in line:
                found.append(json.loads(line))
        return found

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


class Cluster:
    """Starts and stops the processes of one test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Proc] = []

    def spawn(self, name: str, *args: str) -> Proc:
        out, err = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        popen = subprocess.Popen([PY, *args], cwd=self.tmp, stdout=out.open("wb"),
                                 stderr=err.open("wb"), env=env)
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def ct_sim(self, port: int, *, base_a: float, step_a: float = 0.0,
               step_in_s: float = 3600.0, name: str = "ct") -> Proc:
        start_h = 12.0 - step_in_s / 3600.0
        proc = self.spawn(name, "-m", "hw.sim.modbus_server", "--ctkit", "--tcp",
                          f"127.0.0.1:{port}", "--site", "step", "--balanced",
                          "--base-a", str(base_a), "--step-a", str(step_a),
                          "--start-h", str(start_h), "--speed", "1")
        proc.first_json()
        return proc

    def master(self, *, limit_a: float, strategy: str = "maximise", mode: str = "static",
               ct_port: int | None = None, phases: str = '["L1", "L2", "L3"]',
               group: str = "garage", listen: str | None = None, name: str = "master"
               ) -> tuple[Proc, str]:
        clamps = "\n".join(f'{i + 1} = "{p}"' for i, p in enumerate(json.loads(phases)))
        ct = "" if ct_port is None else CT_TABLE.format(clamps=clamps, port=ct_port)
        fallback = f"fallback_limit_a = {limit_a / 2}" if mode == "dynamic" else ""
        (self.tmp / "master.toml").write_text(MASTER_TOML.format(
            group=group, phases=phases, mode=mode, limit_a=limit_a, fallback=fallback,
            strategy=strategy, ct=ct))
        args = ["-m", "master.service", "--config", "master.toml"]
        if listen:
            args += ["--listen", listen]
        proc = self.spawn(name, *args)
        return proc, str(proc.first_json()["listening"])

    def agent(self, cid: str, *, master: str | None, wirings: tuple[str, ...] = (
            '["L1", "L2", "L3"]', '["L2", "L3", "L1"]'), group: str = "garage",
            extra: str = "") -> Proc:
        connectors = "\n".join(f"[connectors.{i + 1}]\nwiring = {w}"
                               for i, w in enumerate(wirings))
        master_t = f'[master]\naddress = "{master}"' if master else ""
        (self.tmp / f"{cid}.toml").write_text(AGENT_TOML.format(
            cid=cid, group=group, connectors=connectors, master=master_t) + extra)
        proc = self.spawn(cid, "-m", "agent.service", "--config", f"{cid}.toml")
        proc.first_json()
        return proc

    def status(self, address: str) -> dict[str, Any]:
        """The master's GroupStatus through the real io7ctl, as JSON."""
        done = subprocess.run([PY, "-m", "master.ctl", "--master", address, "status",
                               "--json"], capture_output=True, timeout=30, check=True)
        return dict(json.loads(done.stdout))

    def ctl(self, address: str, *args: str) -> dict[str, Any]:
        """Any io7ctl command with --json."""
        done = subprocess.run([PY, "-m", "master.ctl", "--master", address, *args, "--json"],
                              capture_output=True, timeout=30, check=True)
        return dict(json.loads(done.stdout))

    def watch(self, address: str, *, until: Callable[[dict[str, Any]], bool],
              timeout_s: float = GENEROUS_S) -> list[dict[str, Any]]:
        """GroupStatus updates from `io7ctl watch --json`, up to the first one `until`
        accepts."""
        proc = subprocess.Popen([PY, "-m", "master.ctl", "--master", address, "watch",
                                 "--json", "--interval-ms", "0"], stdout=subprocess.PIPE)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(dict(json.loads(line)))
                if until(seen[-1]):
                    return seen
                if time.monotonic() > deadline:
                    break
            raise AssertionError(f"watch: condition not met in {timeout_s} s")
        finally:
            proc.kill()
            proc.wait(10)

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@contextmanager
def cluster(tmp: Path) -> Iterator[Cluster]:
    c = Cluster(tmp)
    try:
        yield c
    finally:
        c.close()


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = GENEROUS_S) -> float:
    """Poll until `check()`; returns the seconds it took."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


def last_offers(agent: Proc) -> dict[int, dict[str, Any]]:
    """Each connector's latest offer event from the agent's log."""
    latest: dict[int, dict[str, Any]] = {}
    for e in agent.events("offer"):
        latest[int(e["connector_id"])] = e
    return latest
