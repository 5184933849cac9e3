"""The cluster's speed and scale on real processes (`make bench`, issue 5 part 2).

Per size N: a CT kit simulator (Modbus TCP), the real master (`python -m master.service`,
1 s cycle, dynamic mode, CT kit on the other loads) at debug level, so that it logs one
"cycle" line per cycle with the monotonic time of its CT sample (master/service.py rule
5), and the load generator (tests/bench/loadgen.py) opening N AgentLink streams from
one or more worker processes (tests/bench/fleet.py). What is measured, and how:

1. Cycle latency ("CT sample -> every agent holds its Limits"): per cycle, the last
   receipt of that cycle's Limits (each charger stamps its own, loadgen.py rule 4) minus
   the CT sample time the master logs for that cycle (both CLOCK_MONOTONIC on this host).
   A master that sends only Limits that changed or are due for renewal (issue 15) says
   in the same log line how many it sent (`limits_sent`): a cycle counts when that many
   arrived (the others' Limits are unchanged and still leased: they already hold them),
   misses when fewer did, and has no sample when it sent none. Only cycles after the
   start-of-term hold with a good CT sample count; the window runs until `cycles` of
   them have a sample. The Limits sent are given per sending cycle (median) and per
   window cycle, the silent ones included (mean): unchanged Limits all changed together
   at the hold's end, so they are all renewed together, N every 2nd cycle and none in
   between (the lease of 3 cycles): the median of sending cycles alone reads N.
2. Master CPU: utime + stime from /proc/<pid>/stat over the sampled cycles, as a fraction
   of one core; the cycle interval from the master's issue times (its log).
3. Reaction: mid-run the simulated building load steps up by STEP_A on every phase. From
   the first cycle whose CT reading sees it, count the cycles until the Limits the
   chargers hold (the latest each received), summed per site phase plus the CT's other
   load, fit the group
   limit (1 = the Limits of the very cycle of that read). Computed from what the chargers
   received, not from the master's own status. The step is sized so that the previous
   cycle's allocation would overload a phase: a late reaction shows.
4. Memory: VmRSS of the master at the end of each run, and of one real agent (simulated
   board, both sockets with an EV plugged in) once both its connectors charge.
5. Start-up: a real agent spawned against a running master (past its hold), from spawn
   to its first "offer" log line whose source is the master (its wall-clock timestamp).
   Rules 4 (the agent's part) and 5 live in tests/bench/agentrun.py.
6. Transport: mutual TLS, as deployed, or (`tls=False`) the master's plaintext switch and
   insecure channels, for tests/bench/tlscost.py's comparison.
7. The generator itself (issue 15): its chargers split over `processes` spawned workers
   (fleet.py), each one's CPU (/proc) over the same window and its event loop's lag
   (loadgen.py rule 9, p99 and max over the window), so a table can show the generator
   was not what limited the figures. The window is the same for every figure: from the
   first cycle by which every charger received Limits past the hold, on.

Nothing here asserts on time: the machine has 2 cores shared with other work; the tables
print medians with the sample counts, and the load average before each run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from master.config import DEFAULT_LEASE_CYCLES
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsFiles, channel_credentials, load_tls
from tests.bench.fleet import Fleet, Receipts
from tests.bench.loadgen import WIRINGS
from tests.e2e.harness import (
    PLAINTEXT,
    Cluster,
    Proc,
    charger_dir,
    free_port,
    master_tls,
    operator_dir,
    tls_channel,
)

GROUP = "bench"
BASE_A = 40.0  # the building's other loads per phase before the step
STEP_A = 60.0  # what the step adds per phase (a lift, a heat pump)
MARGIN_A = 2.0  # GroupConfig's default margin, written out so the limit below is exact
PER_CONNECTOR_A = 12.0  # below the 16 A each of two sockets gets from a 32 A charger
CT_RATED_A = 200.0  # holds BASE_A + STEP_A with room
DEFAULT_SETTLE_S = 5.0  # GroupConfig.settle_s; with the lease it makes master rule 4's hold
STEP_AFTER_HOLD_CYCLES = 10  # the allocation has settled at PER_CONNECTOR_A by then
AFTER_STEP_CYCLES = 4  # the run goes on this long after the step, to see the reaction
CONNECT_TIMEOUT_S = 60.0
PER_PROCESS = 500  # rule 7: chargers per generator process (see processes_for)
CLK_TCK = os.sysconf("SC_CLK_TCK")

MASTER_TOML = """
[master]
id = "bench-master"
listen = "{listen}"
state_db = "members.sqlite3"
cycle_ms = {cycle_ms}

[group]
name = "{group}"
mode = "dynamic"
limit_a = {limit_a}
fallback_limit_a = {fallback_a}
margin_a = {margin_a}
ct_placement = "other_loads"
offline_strategy = "maximise"
closed = false  # the fleet's certificates decide; admitting 500 ids is not measured
{tuning}
[ct]
enabled = true
rated_a = {rated_a}
[ct.tcp]
host = "127.0.0.1"
port = {ct_port}

{tls}
"""


def fleet_credentials(charger_id: str) -> grpc.ChannelCredentials:
    """A FakeCharger's own certificate (mutual TLS, issue 11), issued on first use."""
    return channel_credentials(load_tls(TlsFiles.in_folder(charger_dir(charger_id))))


# --- /proc ------------------------------------------------------------------------------
def cpu_s(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads), s."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 onwards
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime: fields 14, 15


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of process `pid`, MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS (a kernel thread?)")


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-quantile by nearest rank (p99 of fewer than 100 samples is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# --- the master and its log -------------------------------------------------------------
def group_limit_a(chargers: int) -> float:
    """Room for PER_CONNECTOR_A on each of the chargers' two three-phase sockets above
    the building's load before the step (and the margin)."""
    return BASE_A + MARGIN_A + 2 * chargers * PER_CONNECTOR_A


def start_master(c: Cluster, *, limit_a: float, ct_port: int, cycle_ms: int = 1000,
                 settle_s: float | None = None, name: str = "master", tls: bool = True,
                 listen: str = "127.0.0.1:0") -> tuple[Proc, str]:
    """The real master at debug level, over mutual TLS or with [tls] plaintext = true;
    returns it and its address."""
    tuning = "" if settle_s is None else f"[group.tuning]\nsettle_s = {settle_s}\n"
    (c.tmp / f"{name}.toml").write_text(MASTER_TOML.format(
        cycle_ms=cycle_ms, group=GROUP, limit_a=limit_a, fallback_a=limit_a / 2,
        margin_a=MARGIN_A, tuning=tuning, rated_a=CT_RATED_A, ct_port=ct_port,
        tls=master_tls() if tls else PLAINTEXT, listen=listen))
    proc = c.spawn(name, "-m", "master.service", "--config", f"{name}.toml",
                   "--log-level", "DEBUG")
    return proc, str(proc.first_json()["listening"])


@dataclass(frozen=True, slots=True)
class MasterCycle:
    """One "cycle" line of the master's log."""

    cycle: int
    ct_sampled_at_s: float | None
    issued_at_s: float
    took_ms: float
    ct_a: tuple[float | None, ...]
    limits_sent: int | None  # None: a master that does not say (sends to every stream)


def master_cycles(master: Proc) -> dict[int, MasterCycle]:
    """The master's cycles by number, from its debug log."""
    return {int(e["cycle"]): MasterCycle(
        cycle=int(e["cycle"]), ct_sampled_at_s=e["ct_sampled_at_s"],
        issued_at_s=float(e["issued_at_s"]), took_ms=float(e["took_ms"]),
        ct_a=tuple(e["ct_a"]), limits_sent=e.get("limits_sent"))
        for e in master.events("cycle")}


class _LogTail:
    """The master's "cycle" lines as they come (read from where the last call ended),
    cycle -> Limits sent: _drive counts the window's cycles with a sample."""

    def __init__(self, master: Proc) -> None:
        self.path, self.offset = master.err, 0
        self.sent: dict[int, int] = {}

    def update(self) -> dict[int, int]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            if b'"event": "cycle"' in line and line.startswith(b"{"):
                e = json.loads(line)
                self.sent[int(e["cycle"])] = int(e.get("limits_sent", 1))
        return self.sent


# --- one size ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScaleResult:
    """One size's numbers; latencies in ms, CPU as a fraction of one core."""

    chargers: int
    samples: int
    latency_median_ms: float
    latency_p99_ms: float
    compute_median_ms: float  # CT sample to Limits queued, in the master
    missed_cycles: int  # window cycles whose sent Limits did not all arrive
    sent_median: float  # Limits the master sent per sampled cycle (median)
    cpu_core: float
    window_s: float
    interval_median_s: float
    interval_max_s: float
    overruns: int  # the master's "cycle overran" warnings
    master_rss_mb: float
    reaction_cycles: int | None  # None: no CT read saw the step, or it did not bind
    status_bytes: int | None  # GetStatus answer size; None: it failed
    status_error: str
    loadavg: float
    tls: bool = True
    generator_cpu_core: float = 0.0  # the load generator's processes together
    generator_cpu_cores: tuple[float, ...] = ()  # rule 7: each of its processes
    generator_lag_p99_ms: float = 0.0  # rule 7: the worst process's
    generator_lag_max_ms: float = 0.0
    # Rule 1: every window cycle with a good CT sample, sending or not (a master that
    # renews unchanged Limits every 2nd cycle sends none in half of them), and the Limits
    # sent per such cycle on average: `samples` and `sent_median` count only sending ones.
    sampled_cycles: int = 0
    sent_mean: float = 0.0


@dataclass(frozen=True, slots=True)
class SizeRun:
    """What one size's run left: the chargers' receipts, the master's cycles, the
    sampled window (cycle numbers, CPU, memory) and the GetStatus outcome."""

    gen: Receipts
    log: dict[int, MasterCycle]
    limit_a: float
    window: list[int]
    cpu_s: float
    wall_s: float
    rss_mb: float
    overruns: int
    status_bytes: int | None
    status_error: str
    loadavg: float
    tls: bool
    generator_cpu_s: tuple[float, ...]  # per worker process
    window_at_s: tuple[float, float]  # monotonic s: the window's start and end


async def _get_status(address: str, *, tls: bool = True) -> tuple[int | None, str]:
    """GetStatus as io7ctl calls it (default channel options): its size, or the error."""
    channel = tls_channel(address, operator_dir()) if tls else \
        grpc.aio.insecure_channel(address)
    async with channel:
        admin = pb_grpc.GroupAdminStub(channel)  # type: ignore[no-untyped-call]
        try:
            status = await admin.GetStatus(pb.GetStatusRequest(), timeout=10)
        except grpc.aio.AioRpcError as err:
            return None, f"{err.code().name}: {err.details()}"
    return len(status.SerializeToString()), ""


@dataclass(frozen=True, slots=True)
class _Window:
    cycles: list[int]
    master_cpu_s: float
    wall_s: float
    rss_mb: float
    generator_cpu_s: tuple[float, ...]
    at_s: tuple[float, float]


def _drive(fleet: Fleet, master: Proc, *, cycles: int, until_s: float, cycle_s: float
           ) -> _Window:
    """Run the fleet until `cycles` cycles past the hold had Limits to send (rule 1)
    and the clock passed `until_s`; the window's cycles (first to last seen one),
    the master's CPU and the wall time over them (s), its RSS at the end (MB), each
    generator process's CPU over them (s: rule 7)."""
    pid, tail = master.popen.pid, _LogTail(master)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while fleet.welcomed() < fleet.chargers:
        if fleet.failed():
            raise RuntimeError(f"{fleet.failed()} streams failed before all were welcomed")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{fleet.welcomed()} of {fleet.chargers} chargers welcomed "
                               f"in {CONNECT_TIMEOUT_S} s")
        time.sleep(0.05)
    deadline = until_s + CONNECT_TIMEOUT_S + 3 * cycles * cycle_s
    while (first := fleet.first_steady()) is None:
        if fleet.failed() or time.monotonic() > deadline:
            raise RuntimeError(f"no steady cycle; {fleet.failed()} streams failed")
        time.sleep(0.01)
    pids = fleet.pids
    cpu0, own0, t0 = cpu_s(pid), [cpu_s(p) for p in pids], time.monotonic()
    while sum(1 for k, n in tail.update().items()
              if first <= k <= (last := fleet.last_seen() or first) and n > 0) < cycles \
            or time.monotonic() < until_s:
        if fleet.failed() or time.monotonic() > deadline:
            raise RuntimeError(f"run stalled at cycle {last}; {fleet.failed()} streams "
                               "failed")
        time.sleep(0.25)
    cpu1, own1, t1 = cpu_s(pid), [cpu_s(p) for p in pids], time.monotonic()
    return _Window(cycles=list(range(first, last + 1)), master_cpu_s=cpu1 - cpu0,
                   wall_s=t1 - t0, rss_mb=rss_mb(pid),
                   generator_cpu_s=tuple(b - a for a, b in zip(own0, own1, strict=True)),
                   at_s=(t0, t1))


def processes_for(chargers: int) -> int:
    """The bench's split of the generator (rule 7): a process per PER_PROCESS chargers.
    Measured at 1 000 over mutual TLS on one process: see the README's speed section."""
    return max(1, math.ceil(chargers / PER_PROCESS))


def run_size(tmp: Path, chargers: int, *, cycles: int, cycle_ms: int = 1000,
             settle_s: float | None = None, tls: bool = True,
             processes: int | None = None) -> SizeRun:
    """One size on fresh processes in `tmp` (see the module docstring); the step comes
    STEP_AFTER_HOLD_CYCLES cycles after the master's hold, the run ends AFTER_STEP_CYCLES
    later at the earliest. `settle_s` shortens the hold (tests); None keeps the default.
    `tls` False: the master's plaintext switch and insecure channels. `processes`: the
    generator's (rule 7); None: processes_for(chargers)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cycle_s = cycle_ms / 1000.0
    hold_s = DEFAULT_LEASE_CYCLES * cycle_s + (DEFAULT_SETTLE_S if settle_s is None
                                               else settle_s)
    step_in_s = hold_s + STEP_AFTER_HOLD_CYCLES * cycle_s
    limit = group_limit_a(chargers)
    loadavg = os.getloadavg()[0]
    fleet: Fleet | None = None
    c = Cluster(tmp)
    try:
        ct_port = free_port()
        c.ct_sim(ct_port, base_a=BASE_A, step_a=STEP_A, step_in_s=step_in_s)
        step_at = time.monotonic() + step_in_s
        master, address = start_master(c, limit_a=limit, ct_port=ct_port, cycle_ms=cycle_ms,
                                       settle_s=settle_s, tls=tls)
        fleet = Fleet(address, chargers=chargers, group=GROUP, cycle_s=cycle_s,
                      processes=processes or processes_for(chargers),
                      tls_dir=charger_dir if tls else None)
        fleet.start()
        window = _drive(fleet, master, cycles=cycles, cycle_s=cycle_s,
                        until_s=step_at + AFTER_STEP_CYCLES * cycle_s)
        gen = fleet.stop()
        size, error = asyncio.run(_get_status(address, tls=tls))
        log = master_cycles(master)
        overruns = len(master.events("cycle overran"))
    finally:
        if fleet is not None:
            fleet.close()
        c.close()
    return SizeRun(gen=gen, log=log, limit_a=limit, window=window.cycles,
                   cpu_s=window.master_cpu_s, wall_s=window.wall_s, rss_mb=window.rss_mb,
                   overruns=overruns, status_bytes=size, status_error=error,
                   loadavg=loadavg, tls=tls, generator_cpu_s=window.generator_cpu_s,
                   window_at_s=window.at_s)


def phase_sums_a(gen: Receipts, cycle: int) -> list[float]:
    """What the chargers hold after `cycle` (Receipts.holdings), summed per site phase
    (L1, L2, L3), A."""
    sums = [0.0, 0.0, 0.0]
    for arrival in gen.holdings(cycle).values():
        for cid, amps in arrival.currents_a.items():
            for site_phase in WIRINGS[cid]:
                sums[site_phase - pb.PHASE_L1] += amps
    return sums


def fits(run: SizeRun, cycle: int, ct_a: Sequence[float | None]) -> bool:
    """Whether the Limits held after `cycle` plus the other loads `ct_a` fit every
    phase."""
    sums = phase_sums_a(run.gen, cycle)
    return all(sums[p] + (ct_a[p] or 0.0) <= run.limit_a + 1e-6 for p in range(3))


def reaction_cycles(run: SizeRun) -> int | None:
    """Rule 3: cycles from the first CT read that sees the step to the first cycle whose
    received Limits fit every phase (1 = that very cycle). None when no read saw the
    step, or the cycle before it would have fitted anyway (the step did not bind)."""
    log = run.log
    seen_at = next((k for k in sorted(log) if log[k].ct_sampled_at_s is not None and all(
        a is not None and a >= BASE_A + STEP_A - 0.5 for a in log[k].ct_a)), None)
    if seen_at is None:
        return None
    complete = sorted(k for k in log if k in run.gen.received or k in run.window)
    before = max((k for k in complete if k < seen_at), default=None)
    if before is None or fits(run, before, log[seen_at].ct_a):
        return None
    return next((k - seen_at + 1 for k in complete
                 if k >= seen_at and fits(run, k, log[k].ct_a)), None)


def summarise(run: SizeRun) -> ScaleResult:
    """The numbers of one run (rules 1-4)."""
    gen, log = run.gen, run.log
    latencies, compute, sent, every = [], [], [], []
    missed = 0
    for k in run.window:
        entry, got = log.get(k), gen.received.get(k, {})
        if entry is None or entry.ct_sampled_at_s is None:
            continue
        expected = gen.chargers if entry.limits_sent is None else entry.limits_sent
        every.append(expected)
        if len(got) < expected:
            missed += 1
            continue
        if expected == 0:
            continue  # rule 1: nothing to deliver, every charger holds its Limits
        latencies.append((max(a.at_s for a in got.values()) - entry.ct_sampled_at_s) * 1000)
        compute.append((entry.issued_at_s - entry.ct_sampled_at_s) * 1000)
        sent.append(expected)
    if not latencies:
        raise RuntimeError(f"no cycle with a sample in {len(run.window)} cycles "
                           f"({missed} missed): see the master's log")
    issued = [log[k].issued_at_s for k in run.window if k in log]
    lags = _lags(run)
    intervals = [b - a for a, b in itertools.pairwise(issued)]
    return ScaleResult(
        chargers=gen.chargers, samples=len(latencies),
        latency_median_ms=statistics.median(latencies),
        latency_p99_ms=nearest_rank(latencies, 0.99),
        compute_median_ms=statistics.median(compute),
        missed_cycles=missed, sent_median=statistics.median(sent),
        sampled_cycles=len(every), sent_mean=statistics.fmean(every),
        cpu_core=run.cpu_s / run.wall_s, window_s=run.wall_s,
        interval_median_s=statistics.median(intervals), interval_max_s=max(intervals),
        overruns=run.overruns, master_rss_mb=run.rss_mb, reaction_cycles=reaction_cycles(run),
        status_bytes=run.status_bytes, status_error=run.status_error, loadavg=run.loadavg,
        tls=run.tls, generator_cpu_core=sum(run.generator_cpu_s) / run.wall_s,
        generator_cpu_cores=tuple(c / run.wall_s for c in run.generator_cpu_s),
        generator_lag_p99_ms=max(lag[0] for lag in lags),
        generator_lag_max_ms=max(lag[1] for lag in lags))


def _lags(run: SizeRun) -> list[tuple[float, float]]:
    """Per generator process: its loop lag's p99 and max over the window, ms (rule 7)."""
    t0, t1 = run.window_at_s
    out = []
    for samples in run.gen.lag:
        inside = [ms for at, ms in samples if t0 <= at <= t1] or [0.0]
        out.append((nearest_rank(inside, 0.99), max(inside)))
    return out or [(0.0, 0.0)]


def measure_size(tmp: Path, chargers: int, *, cycles: int, tls: bool = True) -> ScaleResult:
    """One size at the production cycle (1 s) and hold, over TLS or plaintext."""
    return summarise(run_size(tmp, chargers, cycles=cycles, tls=tls))
