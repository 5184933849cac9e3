"""Real processes on loopback for end-to-end tests: a CT kit simulator (Modbus TCP), a
master, agents; each with its log in a temp folder. Timings are short (250 ms cycles,
1 s lease) and every wait has a generous bound: the machine is shared.

Every channel is mutual TLS (issue 11) with one site PKI per test session (`site_pki`,
made by io7-pki's library; a certificate is issued the first time a name is used): the
master serves as charger `e2e-master`, each agent as its own charger id, io7ctl as the
installer `e2e-installer`. A test that revokes a certificate uses a name of its own,
since the CRL is shared by the session. `Cluster(tmp, tls=False)` runs plaintext."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from master.pki import Pki
from protos.identity import Kind, Role
from protos.tls import TlsFiles, channel_credentials, channel_options, load_tls

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
closed = {closed}

[group.tuning]
settle_s = 0.5
min_pause_s = 0.0
ramp_up_a = 80.0
demand_cap_after_s = 3600.0
resume_hysteresis_a = 1.0  # the worked numbers of the e2e tests; README has the defaults
{ct}
{tls}
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
{tls}
[sim]
evs = "plugged"
[state]
dir = "."
"""
SITE = "e2e"
MASTER_CERT = "e2e-master"  # the charger identity the master serves as
INSTALLER, VIEWER = "e2e-installer", "e2e-viewer"
_PKI: list[Pki] = []


def site_pki() -> Pki:
    """This test session's site PKI (made at the first call, removed at exit)."""
    if not _PKI:
        folder = Path(tempfile.mkdtemp(prefix="io7-e2e-pki-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        pki = Pki(folder / "pki")
        pki.init(SITE, now=dt.datetime.now(dt.UTC))
        _PKI.append(pki)
    return _PKI[0]


def identity_dir(kind: Kind, name: str, role: Role | None = None) -> Path:
    """The folder of `name`'s certificate in the session PKI, issued if new."""
    pki = site_pki()
    folder = pki.identity_folder(kind, name)
    if not (folder / "cert.pem").exists():
        pki.issue(kind, name, now=dt.datetime.now(dt.UTC), role=role)
    return folder


def charger_dir(cid: str) -> Path:
    return identity_dir(Kind.CHARGER, cid)


def operator_dir(name: str = INSTALLER, role: Role = Role.INSTALLER) -> Path:
    return identity_dir(Kind.OPERATOR, name, role)


def master_tls(cert: str = MASTER_CERT) -> str:
    """The master's [tls] table: a charger certificate, the session's CRL."""
    return f'[tls]\ndir = "{charger_dir(cert)}"\ncrl = "{site_pki().crl}"'


def agent_tls(cid: str) -> str:
    return f'[tls]\ndir = "{charger_dir(cid)}"'


PLAINTEXT = "[tls]\nplaintext = true"


def master_toml(*, limit_a: float | str, group: str = "garage", phases: str = '["L1", "L2", "L3"]',
                mode: str = "static", strategy: str = "maximise", fallback: str = "",
                ct: str = "", closed: bool = False, tls: bool = True) -> str:
    """MASTER_TOML filled in; with TLS the master serves as MASTER_CERT."""
    return MASTER_TOML.format(group=group, phases=phases, mode=mode, limit_a=limit_a,
                              fallback=fallback, strategy=strategy, ct=ct,
                              closed=str(closed).lower(),
                              tls=master_tls() if tls else PLAINTEXT)


def agent_toml(cid: str, *, master: str, connectors: str, group: str = "garage",
               tls: bool = True) -> str:
    """AGENT_TOML of an agent of `master` (host:port)."""
    return AGENT_TOML.format(cid=cid, group=group, connectors=connectors,
                             master=f'[master]\naddress = "{master}"',
                             tls=agent_tls(cid) if tls else PLAINTEXT)


def ctl_args(address: str, *, tls: bool = True, operator: Path | None = None) -> list[str]:
    """io7ctl's arguments up to the command: the master and, with TLS, the operator's
    folder (default: the session's installer)."""
    pki = ["--pki-dir", str(operator or operator_dir())] if tls else []
    return [PY, "-m", "master.ctl", "--master", address, *pki]


def tls_channel(address: str, folder: Path) -> grpc.aio.Channel:
    """A mutual-TLS channel to a master with the certificate in `folder`."""
    material = load_tls(TlsFiles.in_folder(folder))
    return grpc.aio.secure_channel(address, channel_credentials(material),
                                   options=channel_options(material.site))


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

    def __init__(self, tmp: Path, *, tls: bool = True) -> None:
        self.tmp = tmp
        self.tls = tls
        self.procs: list[Proc] = []

    def ctl_args(self, address: str) -> list[str]:
        return ctl_args(address, tls=self.tls)

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
               group: str = "garage", listen: str | None = None, name: str = "master",
               closed: bool = False) -> tuple[Proc, str]:
        clamps = "\n".join(f'{i + 1} = "{p}"' for i, p in enumerate(json.loads(phases)))
        ct = "" if ct_port is None else CT_TABLE.format(clamps=clamps, port=ct_port)
        fallback = f"fallback_limit_a = {limit_a / 2}" if mode == "dynamic" else ""
        (self.tmp / "master.toml").write_text(master_toml(
            group=group, phases=phases, mode=mode, limit_a=limit_a, fallback=fallback,
            strategy=strategy, ct=ct, closed=closed, tls=self.tls))
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
            cid=cid, group=group, connectors=connectors, master=master_t,
            tls=(agent_tls(cid) if self.tls else PLAINTEXT) if master else "") + extra)
        proc = self.spawn(cid, "-m", "agent.service", "--config", f"{cid}.toml")
        proc.first_json()
        return proc

    def status(self, address: str) -> dict[str, Any]:
        """The master's GroupStatus through the real io7ctl, as JSON."""
        done = subprocess.run([*self.ctl_args(address), "status", "--json"],
                              capture_output=True, timeout=30, check=True)
        return dict(json.loads(done.stdout))

    def ctl(self, address: str, *args: str) -> dict[str, Any]:
        """Any io7ctl command with --json."""
        done = subprocess.run([*self.ctl_args(address), *args, "--json"],
                              capture_output=True, timeout=30, check=True)
        return dict(json.loads(done.stdout))

    def watch(self, address: str, *, until: Callable[[dict[str, Any]], bool],
              timeout_s: float = GENEROUS_S) -> list[dict[str, Any]]:
        """GroupStatus updates from `io7ctl watch --json`, up to the first one `until`
        accepts."""
        proc = subprocess.Popen([*self.ctl_args(address), "watch", "--json",
                                 "--interval-ms", "0"], stdout=subprocess.PIPE)
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
def cluster(tmp: Path, *, tls: bool = True) -> Iterator[Cluster]:
    c = Cluster(tmp, tls=tls)
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
