"""How big the per-charger daemon is (issue 15: within 80 MB idle), `make bench` or
`python -m tests.bench --only memory`.

1. Daemons as `make run` starts them (master/carpark.py's Park, its real config): a
   scenario B group of DAEMONS io7d (agent, OCPP to the local back office, master
   candidate, web UI; the first reads the CT kit) and a scenario A io7-agent (agent-only
   mode, OCPP, its own clamps). Once a leader is elected and SETTLE_S have passed with no
   request to any web UI (idle), VmRSS of each process is read SAMPLES times a second
   apart; the table shows the largest, and VmHWM (the peak since start). A member
   imports the master's modules at its first lead and the web app at its first request
   or lead (issue 15), and keeps them: one that led before the CT holder took over is
   listed as such.
2. Import cost by component, each in a fresh interpreter (`python -c`): the wall time of
   importing the component's modules and the VmRSS it adds over the bare interpreter
   (median of RUNS). A component alone includes its own dependencies, so the rows
   overlap and do not add up to a daemon.
3. Where io7d's own import time goes: `python -X importtime -c "import master.io7d"`,
   self time summed by top-level package (these add up), and for each heavy third-party
   package the io7 module that first imports it: the candidates for a lazy import when
   the daemon is over its target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from master import carpark

DAEMONS = 3  # a Raft group that survives losing one, as make run's default of 4 nearly
SETTLE_S = 15.0  # after the leader's election: OCPP boot, the first cycles, the web up
LEADER_TIMEOUT_S = 60.0
SAMPLES = 5
RUNS = 3
TARGET_MB = 80.0
OURS = ("master", "agent", "hw", "protos")
# Component -> the modules io7 imports from it (grep of master/ agent/ hw/ protos/).
COMPONENTS: dict[str, tuple[str, ...]] = {
    "grpc": ("grpc", "grpc.aio", "grpc_reflection.v1alpha.reflection"),
    "protobuf + io7 protos": ("google.protobuf", "protos.io7.cluster.v1.cluster_pb2"),
    "numpy": ("numpy",),
    "ocpp": ("ocpp.v16", "ocpp.routing"),
    "websockets": ("websockets.asyncio.client", "websockets.asyncio.server"),
    "cryptography": ("cryptography.x509", "cryptography.hazmat.primitives.asymmetric.ec"),
    "fastapi + uvicorn": ("fastapi", "uvicorn"),
    "prometheus_client": ("prometheus_client.core", "prometheus_client.registry"),
    "aiomqtt": ("aiomqtt",),
    "pysyncobj": ("pysyncobj", "pysyncobj.transport"),
    "pymodbus": ("pymodbus.client", "pymodbus.server"),
    "structlog": ("structlog",),
    "io7-agent (import agent.service)": ("agent.service",),
    "io7d (import master.io7d)": ("master.io7d",),
}
PROBE = """
import json, sys, time
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
r0 = rss_kb(); t0 = time.perf_counter()
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "kb": rss_kb() - r0, "base_kb": r0}))
"""


def _kb_mb(kb: float) -> float:
    return kb * 1024 / 1e6  # as tests/bench/cluster.py: MB of 10^6 bytes


def status_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM of `pid`, MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = _kb_mb(int(value.split()[0]))
    return found["VmRSS"], found["VmHWM"]


@dataclass(frozen=True, slots=True)
class Daemon:
    """One idle daemon (rule 1): its role, largest VmRSS of the samples, VmHWM, MB."""

    name: str
    role: str
    rss_mb: float
    hwm_mb: float


def _leader(park: carpark.Park, names: list[str]) -> str | None:
    for name in names:
        log = park.dir / f"{name}.log"
        if log.exists() and "leads the group: master started" in log.read_text():
            return name
    return None


def measure_daemons(tmp: Path) -> list[Daemon]:
    """Rule 1: a scenario B group of DAEMONS io7d and a scenario A io7-agent."""
    group = carpark.Park(tmp / "b" / "run")
    solo = carpark.Park(tmp / "a" / "run")
    try:
        carpark.build(group, "B", DAEMONS)
        carpark.build(solo, "A", 1)
        names = list(group.agents)
        deadline = time.monotonic() + LEADER_TIMEOUT_S
        while (leader := _leader(group, names)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no io7d led within {LEADER_TIMEOUT_S} s; see {group.dir}")
            time.sleep(0.2)
        time.sleep(SETTLE_S)
        procs = {n: p for n, p in group.procs if n in names}
        procs.update({n: p for n, p in solo.procs if n in solo.agents})
        peak: dict[str, tuple[float, float]] = {}
        for _ in range(SAMPLES):
            for name, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}) while idle")
                rss, hwm = status_mb(p.pid)
                peak[name] = (max(rss, peak.get(name, (0.0, 0.0))[0]), hwm)
            time.sleep(1.0)
    finally:
        solo.stop()
        group.stop()
    def role(name: str) -> str:
        if name == leader:
            return "io7d, leader (agent + OCPP + master + web)"
        if "leads the group: master started" in (group.dir / f"{name}.log").read_text():
            return "io7d, follower that led earlier (the master's modules stay loaded)"
        return "io7d, follower (agent + OCPP + master candidate + web)"

    roles = {n: role(n) for n in names}
    roles.update({n: "io7-agent, agent-only mode (agent + OCPP + own CT)"
                  for n in solo.agents})
    return [Daemon(name=n, role=roles[n], rss_mb=r, hwm_mb=h) for n, (r, h) in peak.items()]


@dataclass(frozen=True, slots=True)
class ImportCost:
    """Rule 2: one component in a fresh interpreter (medians of RUNS)."""

    component: str
    ms: float
    rss_mb: float
    base_mb: float  # the bare interpreter's VmRSS before it


def measure_imports() -> list[ImportCost]:
    out = []
    for component, modules in COMPONENTS.items():
        runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE, *modules],
                                          check=True, capture_output=True, text=True
                                          ).stdout) for _ in range(RUNS)]
        out.append(ImportCost(component=component,
                              ms=statistics.median(r["ms"] for r in runs),
                              rss_mb=_kb_mb(statistics.median(r["kb"] for r in runs)),
                              base_mb=_kb_mb(statistics.median(r["base_kb"] for r in runs))))
    return out


@dataclass(frozen=True, slots=True)
class ImportTree:
    """Rule 3: self time by top-level package (ms) and, per third-party package, the io7
    module that first imports it."""

    self_ms: dict[str, float]
    first_by: dict[str, str]


def parse_importtime(text: str) -> ImportTree:
    """`-X importtime` output (post-order: a module's imports come before it)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own_us, _, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 3) // 2  # " | " + 2 per level from 1
        rows.append((depth, name.strip(), int(own_us)))
    self_ms: dict[str, float] = {}
    first_by: dict[str, str] = {}
    stack: list[str] = []  # reversed post-order is a pre-order: parents come first
    for depth, name, self_us in reversed(rows):
        del stack[depth:]
        top = name.split(".")[0]
        self_ms[top] = self_ms.get(top, 0.0) + self_us / 1000
        ours = next((m for m in reversed(stack) if m.split(".")[0] in OURS), None)
        if top not in OURS and ours is not None:
            first_by[top] = ours  # the last seen in reverse is the first imported
        stack.append(name)
    return ImportTree(self_ms=self_ms, first_by=first_by)


def measure_tree(module: str) -> ImportTree:
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         check=True, capture_output=True, text=True).stderr
    return parse_importtime(err)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m tests.bench.memory", description=__doc__
                            ).parse_args(argv)
    loadavg = os.getloadavg()[0]
    print(f"## Resident memory of the per-charger daemons (target <= {TARGET_MB:g} MB idle; "
          f"load avg {loadavg:.2f})")
    print()
    try:
        with tempfile.TemporaryDirectory(prefix="io7-bench-mem-") as tmp:
            daemons = measure_daemons(Path(tmp))
    except (RuntimeError, OSError) as err:
        print(f"daemons: not measured ({type(err).__name__}: {err})")
        daemons = []
    if daemons:
        print("| daemon | role | VmRSS MB (largest of the samples) | VmHWM MB | <= target? |")
        print("|---|---|---:|---:|---|")
        for d in daemons:
            ok = "yes" if d.rss_mb <= TARGET_MB else "**no**"
            print(f"| {d.name} | {d.role} | {d.rss_mb:.1f} | {d.hwm_mb:.1f} | {ok} |")
    print()
    imports = measure_imports()
    tree = measure_tree("master.io7d")
    print(f"Import cost by component, each in a fresh interpreter (median of {RUNS}; "
          f"the bare interpreter is {imports[0].base_mb:.1f} MB; components overlap). "
          "'At start': io7d imports it when it starts (`import master.io7d`), not only "
          "when used:")
    print()
    print("| component | modules | import ms | RSS added MB | at start |")
    print("|---|---|---:|---:|---|")
    for c in imports:
        tops = {m.split(".")[0] for m in COMPONENTS[c.component]}
        at_start = "yes" if tops <= set(tree.self_ms) else "no"
        print(f"| {c.component} | {', '.join(COMPONENTS[c.component])} | {c.ms:.0f} | "
              f"{c.rss_mb:.1f} | {at_start} |")
    print()
    total = sum(tree.self_ms.values())
    print(f"`python -X importtime -c 'import master.io7d'`: {total:.0f} ms of imports; self "
          "time by top-level package (the 15 largest), and the io7 module that imports it "
          "first:")
    print()
    print("| package | ms | first imported by |")
    print("|---|---:|---|")
    for top, ms in sorted(tree.self_ms.items(), key=lambda kv: -kv[1])[:15]:
        print(f"| {top} | {ms:.0f} | {tree.first_by.get(top, '-')} |")


if __name__ == "__main__":
    main()
