"""`make run`: a simulated car park, every part its own process, exactly as on chargers.

    python -m master.carpark [--scenario A|B|C] [--chargers N] [--run-dir DIR]
                             [--csms-url ws://host:port/path]

- B (default): a three-phase site, N io7 Doubles (default 4, alternating phase rotation)
  on loopback "LAN", each its own `io7d` (agent and master candidate, issue 13): the
  group elects its master among them (Raft). The Sense CT kit (three clamps) is served
  by the simulator over a pty serial line (real Modbus RTU) to the first charger only,
  the preferred master; the load is an office building's.
- C: single-phase chargers, one group per phase, three io7d per phase (a Raft group of
  two cannot lose one: three can), a CT kit (clamp #1) per phase on its first charger.
- A: one charger in agent-only mode (io7-agent) balancing its two sockets against its
  own clamps: no group, no election.

EVs arrive and leave at random (each agent's simulated board); the view redraws every
second (master/carparkview.py): per group, the master found by asking its members in
turn, its term and its pid. `kill -9` that pid: the next frames say "no master
(election)" for a few seconds, then name the new master and its higher term. A killed
daemon is not restarted. Ctrl-C, SIGTERM (what a supervisor sends) or SIGHUP (a closed
terminal) stops everything: SIGTERM to every process, agents put their hardware in the
safe state. Every child also gets SIGTERM from the kernel when the launcher dies for any
reason, SIGKILL included (Linux PR_SET_PDEATHSIG), so no part of a car park outlives it.

Once every daemon runs, every group's member addresses go to `.run/io7ctl.json`
(master/runfile), so `io7ctl status` run from this folder, or any folder below it, finds
the masters by itself. Every channel (gRPC and the Raft link) is mutual TLS with a
throwaway site CA under `.run/pki`, made at every start (master/carparkpki.py); io7d
admits its configured members itself; the run file records the installer certificate
io7ctl then uses. The chargers' state folders are wiped at every start too: a Raft
journal and the agents' highest term seen belong together (an agent keeps refusing
terms below one it saw, e.g. from an older car park).

Every charger is an OCPP 1.6J charge point under its own id (= its charger id). By default
they connect to a local back office (hw.sim.csms, its log in csms.log); `--csms-url` (or
the CSMS_URL environment variable, `make run CSMS_URL=ws://...`) points them at an external
one instead. The view shows each charger's OCPP link state, read from the agents' logs.

Every io7d serves its web UI and REST API over HTTPS (the site CA under .run/pki signs
its certificate: the browser warns until you trust .run/pki/ca/ca.pem) on a loopback port
of its own; the URLs and each charger's installer password file are printed at start and
under every frame of the view. The group pages are on the elected master's UI.

The CT simulator serves the building's load only, so the masters count it as "other
loads" (ct_placement = other_loads); a grid-incomer CT that also sees the EVs needs a
simulator fed by the agents' draw (not built yet). The members' ports are picked below
the kernel's ephemeral range, so no outgoing connection can take one before its io7d
binds it (a master candidate binds its port only when it is elected).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from master import carparkpki, runfile
from master.carparkview import OcppLinks, run_view, web_lines
from master.pki import Pki

PY = sys.executable
ROTATIONS = ('["L1", "L2", "L3"]', '["L2", "L3", "L1"]', '["L3", "L1", "L2"]')
PER_PHASE_C = 3  # scenario C's chargers per phase: a Raft group of 3 survives losing 1

CHARGER = """[charger]
id = "{cid}"
current_limit_a = 32
[connectors.1]
wiring = {wiring}
[connectors.2]
wiring = {wiring}
[sim]
seed = {seed}
evs = "random"
[state]
dir = "state-{cid}"
[ocpp]
enabled = true
url = "{csms_url}"
"""

GROUP = """{tls}
[master]
cycle_ms = 1000
lease_cycles = 3

[group]
name = "{group}"
phases = {phases}
mode = "dynamic"
limit_a = {limit}
fallback_limit_a = {fallback}
ct_placement = "other_loads"
margin_a = 2.0
offline_strategy = "maximise"
ct_charger = "{ct_charger}"

[group.members]
{members}
"""

CT = """
[ct]
enabled = true
rated_a = 100
timeout_s = 0.5
retries = 1
[ct.clamps]
{clamps}
[ct.serial]
port = "{pty}"
baudrate = 9600
"""

WEB = """
[web]
listen = "127.0.0.1:{port}"
[web.members]
{urls}
"""

AGENT_ONLY = """
[agent_only]
site_limit_a = 40
mode = "dynamic"
margin_a = 2.0
fallback_limit_a = 16
[agent_only.ct]
enabled = true
type = "site"
clamps = [1, 2, 3]
rated_a = 100
port = "{pty}"
"""


PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP while the car park starts (run_view handles them afterwards):
    stop it the way Ctrl-C does."""


def _stop_on_signal(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def _die_with(parent_pid: int) -> Callable[[], None] | None:
    """A preexec_fn: the child gets SIGTERM when the launcher dies, even by SIGKILL.
    PR_SET_PDEATHSIG fires when the parent *thread* that forked the child exits, so only
    the launcher's main thread spawns (Park.spawn). Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_pairs(n: int, taken: set[int]) -> list[int]:
    """n ports p on 127.0.0.1 with p and p + 1 free (io7d's Raft listens on p + 1), below
    the ephemeral range (no outgoing connection takes one before its io7d binds it), and
    not in `taken` (ports given to members that bind only once elected); adds them."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default range starts there
    floor = 10000  # above the well-known and most registered services' ports
    if low - floor < 4 * n:
        raise RuntimeError(f"no room for {n} port pairs below the ephemeral range ({low}): "
                           "widen net.ipv4.ip_local_port_range")
    found: list[int] = []
    for p in random.sample(range(floor, low - 1, 2), k=min(2000, (low - 1 - floor) // 2)):
        if p not in taken and _bindable(p) and _bindable(p + 1):
            found.append(p)
            if len(found) == n:
                taken.update(found)
                return found
    raise RuntimeError(f"not {n} free port pairs on 127.0.0.1 below {low}")


class Park:
    """The processes of one car park and their logs in `run_dir`."""

    def __init__(self, run_dir: Path, csms_url: str | None = None) -> None:
        self.dir = run_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("state-*"):  # a fresh car park (see the docstring)
            shutil.rmtree(old, ignore_errors=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.csms_url = csms_url  # None: start the local back office first
        self.agents: list[str] = []
        self.links = OcppLinks(self.dir)
        self.preexec = _die_with(os.getpid())
        self.pki: Pki | None = None  # set by build(): the car park's site (carparkpki)
        self.ports: set[int] = set()  # given to members (port_pairs)
        self.web: dict[str, str] = {}  # charger id -> its web UI's URL (issue 14)

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.dir / f"{name}.out").open("wb")
        err = (self.dir / f"{name}.log").open("wb")
        # Spawned by build() before view() opens any gRPC channel: no other thread yet.
        p = subprocess.Popen([PY, *args], cwd=self.dir, stdout=out, stderr=err,
                             start_new_session=True, preexec_fn=self.preexec)  # noqa: PLW1509
        self.procs.append((name, p))
        return p

    def proc(self, name: str) -> subprocess.Popen[bytes] | None:
        return next((p for n, p in self.procs if n == name), None)

    def first_line(self, name: str, timeout_s: float = 20.0) -> dict[str, str]:
        path = self.dir / f"{name}.out"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = path.read_text() if path.exists() else ""
            if text.strip():
                return dict(json.loads(text.splitlines()[0]))
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not start; see {self.dir / (name + '.log')}")

    def ct_kit(self, name: str, *, peak_a: float, seed: int) -> str:
        self.spawn(name, "-m", "hw.sim.modbus_server", "--ctkit", "--pty", "--site", "office",
                   "--peak-a", str(peak_a), "--noise-a", "1.0", "--seed", str(seed),
                   "--start-h", "9", "--speed", "60")
        return self.first_line(name)["port"]

    def csms(self) -> str:
        """The back office the chargers connect to: the local one unless given."""
        if self.csms_url is None:
            self.spawn("csms", "-m", "hw.sim.csms", "--listen", "127.0.0.1:0",
                       "--heartbeat-s", "60")
            self.csms_url = self.first_line("csms")["listening"]
        return self.csms_url

    def charger(self, cid: str, *, wiring: str, seed: int) -> str:
        """The tables of charger `cid` (its agent's), as io7.toml and agent.toml share them."""
        return CHARGER.format(cid=cid, wiring=wiring, seed=seed, csms_url=self.csms())

    def group(self, group: str, *, phases: list[str], limit: float, pty: str,
              chargers: dict[str, str], seeds: list[int]) -> runfile.RunGroup:
        """One io7d per charger (id -> wiring) of `group`; the first reads the CT kit."""
        assert self.pki is not None
        ports = port_pairs(len(chargers), self.ports)
        members = [runfile.RunMember(charger_id=cid, address=f"127.0.0.1:{port}")
                   for cid, port in zip(chargers, ports, strict=True)]
        table = "\n".join(f'"{m.charger_id}" = "{m.address}"' for m in members)
        holder = members[0].charger_id
        web_ports = port_pairs(len(chargers), self.ports)  # p + 1 unused: one helper
        urls = {cid: f"https://127.0.0.1:{p}" for cid, p in zip(chargers, web_ports,
                                                                   strict=True)}
        self.web.update(urls)
        web = "\n".join(f'"{cid}" = "{url}"' for cid, url in urls.items())
        ct = CT.format(clamps="\n".join(f'{i + 1} = "{p}"' for i, p in enumerate(phases)),
                       pty=pty)
        for (cid, wiring), seed in zip(chargers.items(), seeds, strict=True):
            (self.dir / f"{cid}.toml").write_text(
                self.charger(cid, wiring=wiring, seed=seed) + GROUP.format(
                    tls=carparkpki.master_tls(self.pki, cid), group=group,
                    phases=json.dumps(phases), limit=limit, fallback=limit / 2,
                    ct_charger=holder, members=table) + (ct if cid == holder else "")
                + WEB.format(port=urls[cid].rpartition(":")[2], urls=web))
        for cid in chargers:
            self.spawn(cid, "-m", "master.io7d", "--config", f"{cid}.toml")
            self.agents.append(cid)
        for cid in chargers:
            self.first_line(cid)
        return runfile.RunGroup(group=group, members=tuple(members))

    def agent_only(self, cid: str, *, pty: str) -> None:
        """Scenario A: one io7-agent balancing its own sockets (no group, no election)."""
        (self.dir / f"{cid}.toml").write_text(self.charger(
            cid, wiring=ROTATIONS[0], seed=1) + AGENT_ONLY.format(pty=pty))
        self.spawn(cid, "-m", "agent.service", "--config", f"{cid}.toml")
        self.agents.append(cid)

    def stop(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 10 s: killed", file=sys.stderr)
                p.kill()


def build(park: Park, scenario: str, chargers: int) -> list[runfile.RunGroup]:
    """Start the car park; returns its groups (none in scenario A)."""
    if scenario == "A":
        park.agent_only("io7-solo", pty=park.ct_kit("ctkit", peak_a=20.0, seed=1))
        return []
    if scenario == "B":
        ids = [f"io7-{i + 1:02d}" for i in range(chargers)]
        park.pki = carparkpki.make_site(park.dir.parent / "pki", ids)
        pty = park.ct_kit("ctkit", peak_a=40.0, seed=1)
        return [park.group("garage", phases=["L1", "L2", "L3"], limit=100.0, pty=pty,
                           chargers={cid: ROTATIONS[i % 3] for i, cid in enumerate(ids)},
                           seeds=[i + 1 for i in range(len(ids))])]
    phases = ("L1", "L2", "L3")
    park.pki = carparkpki.make_site(park.dir.parent / "pki", [
        f"io7-{phase}-{j + 1}" for phase in phases for j in range(PER_PHASE_C)])
    groups = []
    for k, phase in enumerate(phases):
        pty = park.ct_kit(f"ctkit-{phase}", peak_a=15.0, seed=k + 1)
        groups.append(park.group(
            f"garage-{phase}", phases=[phase], limit=40.0, pty=pty,
            chargers={f"io7-{phase}-{j + 1}": f'["{phase}"]' for j in range(PER_PHASE_C)},
            seeds=[10 * k + j for j in range(PER_PHASE_C)]))
    return groups


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="carpark", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("A", "B", "C"), default="B")
    ap.add_argument("--chargers", type=int, default=4, help="scenario B: io7 Doubles, "
                    "one io7d each (a group of 2 cannot lose one: 3 can; 1: a lone charger)")
    ap.add_argument("--run-dir", type=Path, default=Path(".run"))
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after N s (0: Ctrl-C)")
    ap.add_argument("--csms-url", default=os.environ.get("CSMS_URL") or None,
                    help="an external OCPP back office for every charger (default: "
                    "$CSMS_URL, else a local one)")
    args = ap.parse_args(argv)
    if args.chargers < 1:
        ap.error(f"--chargers {args.chargers}: give 1 or more")
    if args.csms_url and not args.csms_url.startswith(("ws://", "wss://")):
        ap.error(f"--csms-url {args.csms_url!r}: give ws://host:port/path or wss://...")
    park = Park(args.run_dir.resolve() / f"scenario-{args.scenario}", csms_url=args.csms_url)
    run_file = args.run_dir.resolve() / runfile.RUN_FILE.name
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_signal)
    try:
        groups = build(park, args.scenario, args.chargers)
        if park.web:
            print(web_lines(park), flush=True)
        runfile.write(run_file, scenario=args.scenario, logs=park.dir, groups=groups,
                      operator=None if park.pki is None else
                      carparkpki.installer_folder(park.pki))
        why = asyncio.run(run_view(groups, park, clear=sys.stdout.isatty(),
                                   seconds=args.seconds))
        print(f"stopping the car park ({why})", flush=True)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM/SIGHUP while starting
        print(f"stopping the car park ({stop or 'Ctrl-C'})", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # one clean stop, whole
            signal.signal(sig, signal.SIG_IGN)
        runfile.remove(run_file)
        park.stop()
        print("car park stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
