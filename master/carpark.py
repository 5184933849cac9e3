"""`make run`: a simulated car park, every part its own process, exactly as on chargers.

    python -m master.carpark [--scenario A|B|C] [--chargers N] [--run-dir DIR]
                             [--csms-url ws://host:port/path]

- B (default): a three-phase site, one master, N io7 Doubles (default 4, alternating
  phase rotation) on loopback "LAN", the Sense CT kit (three clamps) served by the
  simulator over a pty serial line (real Modbus RTU), an office building's load.
- C: single-phase chargers on alternating phases: one master and one CT kit (clamp #1)
  per phase, two chargers per phase.
- A: one charger in agent-only mode balancing its two sockets against its own clamps.

EVs arrive and leave at random (each agent's simulated board); the view redraws every
second from the masters' WatchStatus (A: from the agent's log). Ctrl-C, SIGTERM (what a
supervisor sends) or SIGHUP (a closed terminal) stops everything: SIGTERM to every process,
agents put their hardware in the safe state. Every child also gets SIGTERM from the kernel
when the launcher dies for any reason, SIGKILL included (Linux PR_SET_PDEATHSIG), so no
part of a car park outlives it.

Once every master listens, the masters' addresses go to `.run/io7ctl.json` (master/runfile),
so `io7ctl status` run from this folder, or any folder below it, finds them by itself.
Every channel is mutual TLS with a throwaway site CA under `.run/pki`, made at every
start, and the chargers are admitted to their closed groups (master/carparkpki.py); the
run file records the installer certificate io7ctl then uses.

Every charger is an OCPP 1.6J charge point under its own id (= its charger id). By default
they connect to a local back office (hw.sim.csms, its log in csms.log); `--csms-url` (or
the CSMS_URL environment variable, `make run CSMS_URL=ws://...`) points them at an external
one instead. The view shows each charger's OCPP link state, read from the agents' logs.

The CT simulator serves the building's load only, so the masters count it as "other
loads" (ct_placement = other_loads); a grid-incomer CT that also sees the EVs needs a
simulator fed by the agents' draw (not built yet).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from master import carparkpki, ctltls, runfile
from master.ctl import render
from master.pki import Pki
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsFiles, load_tls

PY = sys.executable
ROTATIONS = ('["L1", "L2", "L3"]', '["L2", "L3", "L1"]', '["L3", "L1", "L2"]')

MASTER = """[master]
id = "{name}"
listen = "127.0.0.1:0"
state_db = "{name}.sqlite3"
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

{tls}"""

AGENT = """[charger]
id = "{cid}"
group = "{group}"
current_limit_a = 32
[connectors.1]
wiring = {wiring}
[connectors.2]
wiring = {wiring}
{master}
[sim]
seed = {seed}
evs = "random"
[state]
dir = "state-{cid}"
[ocpp]
enabled = true
url = "{csms_url}"
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


class Park:
    """The processes of one car park and their logs in `run_dir`."""

    def __init__(self, run_dir: Path, csms_url: str | None = None) -> None:
        self.dir = run_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.csms_url = csms_url  # None: start the local back office first
        self.agents: list[str] = []
        self.links = OcppLinks(self.dir)
        self.preexec = _die_with(os.getpid())
        self.pki: Pki | None = None  # set by build(): the car park's site (carparkpki)

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.dir / f"{name}.out").open("wb")
        err = (self.dir / f"{name}.log").open("wb")
        # Spawned by build() before view() opens any gRPC channel: no other thread yet.
        p = subprocess.Popen([PY, *args], cwd=self.dir, stdout=out, stderr=err,
                             start_new_session=True, preexec_fn=self.preexec)  # noqa: PLW1509
        self.procs.append((name, p))
        return p

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

    def master(self, name: str, *, group: str, phases: str, limit: float, pty: str,
               chargers: list[str]) -> str:
        """A master of `chargers` (admitted), on the first of them (carparkpki rule 2)."""
        assert self.pki is not None
        clamps = "\n".join(f'{i + 1} = "{p}"' for i, p in enumerate(json.loads(phases)))
        (self.dir / f"{name}.toml").write_text(MASTER.format(
            name=name, group=group, phases=phases, limit=limit, fallback=limit / 2,
            clamps=clamps, pty=pty, tls=carparkpki.master_tls(self.pki, chargers[0])))
        carparkpki.admit(self.dir / f"{name}.sqlite3", group, chargers)
        self.spawn(name, "-m", "master.service", "--config", f"{name}.toml")
        return self.first_line(name)["listening"]

    def csms(self) -> str:
        """The back office the chargers connect to: the local one unless given."""
        if self.csms_url is None:
            self.spawn("csms", "-m", "hw.sim.csms", "--listen", "127.0.0.1:0",
                       "--heartbeat-s", "60")
            self.csms_url = self.first_line("csms")["listening"]
        return self.csms_url

    def agent(self, cid: str, *, group: str, wiring: str, master: str | None, seed: int,
              extra: str = "") -> None:
        master_t = ""
        if master:
            assert self.pki is not None
            master_t = f'[master]\naddress = "{master}"\n{carparkpki.agent_tls(self.pki, cid)}'

        (self.dir / f"{cid}.toml").write_text(AGENT.format(
            cid=cid, group=group, wiring=wiring, master=master_t, seed=seed,
            csms_url=self.csms()) + extra)
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


class OcppLinks:
    """Each charger's latest "ocpp link" state, read from the new part of its log."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.read_to: dict[str, int] = {}
        self.state: dict[str, str] = {}

    def frame(self, agents: list[str], csms_url: str | None) -> str:
        for cid in agents:
            self._read(cid)
        cells = [f"{cid} {self.state.get(cid, 'starting')}" for cid in agents]
        return f"OCPP 1.6J back office {csms_url}:\n  " + "  ".join(cells)

    def _read(self, cid: str) -> None:
        path = self.dir / f"{cid}.log"
        if not path.exists():
            return
        with path.open("rb") as f:
            f.seek(self.read_to.get(cid, 0))
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits
        self.read_to[cid] = self.read_to.get(cid, 0) + len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith("{") and '"event": "ocpp link"' in line:
                self.state[cid] = str(json.loads(line).get("state", "?"))


def build(park: Park, scenario: str, chargers: int) -> list[tuple[str, str]]:
    """Start the car park; returns each master's group and address (none in scenario A)."""
    if scenario == "A":
        pty = park.ct_kit("ctkit", peak_a=20.0, seed=1)
        park.agent("io7-solo", group="solo", wiring=ROTATIONS[0], master=None, seed=1,
                   extra=AGENT_ONLY.format(pty=pty))
        return []
    if scenario == "B":
        ids = [f"io7-{i + 1:02d}" for i in range(chargers)]
        park.pki = carparkpki.make_site(park.dir.parent / "pki", ids)
        pty = park.ct_kit("ctkit", peak_a=40.0, seed=1)
        address = park.master("master", group="garage", phases='["L1", "L2", "L3"]',
                              limit=100.0, pty=pty, chargers=ids)
        for i, cid in enumerate(ids):
            park.agent(cid, group="garage", wiring=ROTATIONS[i % 3], master=address,
                       seed=i + 1)
        return [("garage", address)]
    masters = []
    phases = ("L1", "L2", "L3")
    park.pki = carparkpki.make_site(park.dir.parent / "pki", [
        f"io7-{phase}-{j + 1}" for phase in phases for j in range(2)])
    for k, phase in enumerate(phases):
        pty = park.ct_kit(f"ctkit-{phase}", peak_a=15.0, seed=k + 1)
        ids = [f"io7-{phase}-{j + 1}" for j in range(2)]
        address = park.master(f"master-{phase}", group=f"garage-{phase}",
                              phases=f'["{phase}"]', limit=40.0, pty=pty, chargers=ids)
        masters.append((f"garage-{phase}", address))
        for j, cid in enumerate(ids):
            park.agent(cid, group=f"garage-{phase}", wiring=f'["{phase}"]', master=address,
                       seed=10 * k + j)
    return masters


async def run_view(masters: list[tuple[str, str]], park: Park, *, clear: bool,
                   seconds: float) -> str:
    """The view until `seconds` have passed (0: no end), SIGTERM or SIGHUP; returns why
    it ended. Inside the event loop the signals set an event (the loop's own handlers),
    so the view's channels close in order; Ctrl-C goes through asyncio.run as usual."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        why.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)
    drawing = asyncio.create_task(view(masters, park, clear), name="view")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait({drawing, stopped}, timeout=seconds or None,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (drawing, stopped):
            task.cancel()
        await asyncio.gather(drawing, stopped, return_exceptions=True)
    if drawing in done:
        drawing.result()  # the view ended by itself: only an error does that
    return why[0] if why else f"{seconds:g} s are over"


async def view(masters: list[tuple[str, str]], park: Park, clear: bool) -> None:
    """Redraw the car park every second until cancelled."""
    addresses = [address for _, address in masters]
    tls = None if park.pki is None else load_tls(TlsFiles.in_folder(
        carparkpki.installer_folder(park.pki)))
    channels = [ctltls.open_channel(a, tls) for a in addresses]
    stubs = [pb_grpc.GroupAdminStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
    try:
        while True:
            frames = []
            for address, stub in zip(addresses, stubs, strict=True):
                try:
                    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=2.0)
                    frames.append(f"master at {address}\n{render(status)}")
                except grpc.aio.AioRpcError as err:
                    frames.append(f"master {address}: {err.code().name}")
            if not addresses:
                frames.append(_agent_only_frame(park))
            frames.append(park.links.frame(park.agents, park.csms_url))
            head = (f"io7-cluster car park ({len(park.procs)} processes, logs in {park.dir}); "
                    "Ctrl-C stops; io7ctl status from this folder finds the master"
                    f"{'s' if len(masters) > 1 else ''}")
            text = head + "\n\n" + "\n\n".join(frames)
            print(("\x1b[2J\x1b[H" if clear else "\n") + text, flush=True)
            await asyncio.sleep(1.0)
    finally:
        for ch in channels:
            await ch.close()


def _agent_only_frame(park: Park) -> str:
    latest: dict[int, dict[str, object]] = {}
    log = park.dir / "io7-solo.log"
    for line in (log.read_text().splitlines() if log.exists() else []):
        if line.startswith("{") and '"event": "offer"' in line:
            e = json.loads(line)
            latest[int(e["connector_id"])] = e
    rows = [f"  socket {cid}: offered {e['current_a']} A  ({e['source']})"
            for cid, e in sorted(latest.items())]
    return "agent-only io7-solo (site limit 40 A, own CT clamps)\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="carpark", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("A", "B", "C"), default="B")
    ap.add_argument("--chargers", type=int, default=4, help="scenario B: io7 Doubles")
    ap.add_argument("--run-dir", type=Path, default=Path(".run"))
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after N s (0: Ctrl-C)")
    ap.add_argument("--csms-url", default=os.environ.get("CSMS_URL") or None,
                    help="an external OCPP back office for every charger (default: "
                    "$CSMS_URL, else a local one)")
    args = ap.parse_args(argv)
    if args.csms_url and not args.csms_url.startswith(("ws://", "wss://")):
        ap.error(f"--csms-url {args.csms_url!r}: give ws://host:port/path or wss://...")
    park = Park(args.run_dir.resolve() / f"scenario-{args.scenario}", csms_url=args.csms_url)
    run_file = args.run_dir.resolve() / runfile.RUN_FILE.name
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_signal)
    try:
        masters = build(park, args.scenario, args.chargers)
        runfile.write(run_file, scenario=args.scenario, logs=park.dir, masters=masters,
                      operator=None if park.pki is None else
                      carparkpki.installer_folder(park.pki))
        why = asyncio.run(run_view(masters, park, clear=sys.stdout.isatty(),
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
