"""The load generator split over processes (issue 15: keep the generator honest).

One event loop serving 1 000 TLS streams can lag, and then its receipt stamps measure
the generator, not the master. So the bench's chargers run in `processes` workers:

1. Each worker is a fresh interpreter (multiprocessing's spawn: no gRPC state forked)
   running one LoadGenerator over a contiguous share of the fleet (tests/bench/loadgen.py
   rule 8): its chargers keep their fleet-wide numbers and offsets, so N chargers look
   the same to the master however they are split.
2. Over mutual TLS every charger's certificate is issued here, before the workers start
   (the e2e session's PKI belongs to this process); a worker reads its chargers' folders.
3. Progress crosses in shared memory, four numbers per worker, written ten times a
   second: chargers welcomed, streams failed, its first steady cycle (by then each of its
   chargers has received Limits past the start-of-term hold, not its fail-safe) and the
   last cycle any of them received. A master that sends only changed or renewed Limits
   (issue 15) does not reach every charger every cycle, so "complete" is not required.
   The parent polls them and reads every process's CPU from /proc.
4. At stop every worker sends back its chargers (their last Limits and Welcome), what
   they received per cycle (loadgen rule 4), their errors and its loop-lag samples
   (rule 9); `Receipts` merges them. CLOCK_MONOTONIC is system-wide, so stamps taken in
   different workers compare with each other and with the master's log.
One process is the same path with one worker.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

import grpc

from protos.tls import TlsFiles, channel_credentials, load_tls
from tests.bench.loadgen import Arrival, FakeCharger, LoadGenerator

FIELDS = 4  # rule 3: welcomed, failed, first steady cycle, last cycle received
NONE = -1.0  # a cycle not seen yet
PUBLISH_S = 0.1  # rule 3
START_TIMEOUT_S = 60.0  # a worker's interpreter start and imports, on a loaded machine
REPORT_TIMEOUT_S = 120.0  # a worker's last streams closed and its receipts pickled


@dataclass(frozen=True, slots=True)
class Share:
    """What one worker serves (rule 1); `tls_dirs`: per charger, its certificate's folder
    (rule 2), None for plaintext."""

    address: str
    group: str
    cycle_s: float
    first: int
    chargers: int
    spread: int
    prefix: str
    tls_dirs: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """Rule 4: one worker's outcome."""

    fleet: list[FakeCharger]
    received: dict[int, dict[str, Arrival]]
    errors: dict[str, str]
    lag: list[tuple[float, float]]


@dataclass
class Receipts:
    """The whole fleet's outcome (rule 4), shaped like a LoadGenerator's for the analysis:
    `received[cycle][charger_id]`, `errors`, `fleet`; `lag` per worker."""

    chargers: int
    fleet: list[FakeCharger]
    received: dict[int, dict[str, Arrival]]
    errors: dict[str, str]
    lag: list[list[tuple[float, float]]]

    @property
    def welcomed(self) -> int:
        return sum(1 for c in self.fleet if c.welcome is not None)

    def complete_cycles(self) -> list[int]:
        """Cycles whose Limits reached every charger, in order."""
        return sorted(k for k, got in self.received.items() if len(got) == self.chargers)

    def holdings(self, cycle: int) -> dict[str, Arrival]:
        """What each charger holds after `cycle`: its latest Limits of that cycle or
        an earlier one (a master may leave unchanged Limits unsent until renewal)."""
        held: dict[str, Arrival] = {}
        for k in sorted(k for k in self.received if k <= cycle):
            held.update(self.received[k])
        return held


def shares(chargers: int, processes: int) -> list[tuple[int, int]]:
    """(first, count) of each worker: contiguous, sizes differing by at most one."""
    if not 1 <= processes <= chargers:
        raise ValueError(f"processes={processes}: need 1 to {chargers} (one per charger "
                         "at most)")
    bounds = [k * chargers // processes for k in range(processes + 1)]
    return [(a, b - a) for a, b in itertools.pairwise(bounds)]


def _credentials(dirs: dict[str, str]) -> Callable[[str], grpc.ChannelCredentials]:
    def for_charger(charger_id: str) -> grpc.ChannelCredentials:
        return channel_credentials(load_tls(TlsFiles.in_folder(Path(dirs[charger_id]))))
    return for_charger


def _publish(gen: LoadGenerator, row: list[float], out: SynchronizedArray[float],
             slot: int, past_hold: dict[str, int]) -> None:
    """Rule 3, incrementally: only cycles above the last one seen are looked at;
    `past_hold`: charger id -> its first cycle of Limits that are not the fail-safe."""
    for k in sorted(k for k in gen.received if k > row[3]):
        for cid, a in gen.received[k].items():
            if not a.failsafe:
                past_hold.setdefault(cid, k)
        row[3] = float(k)
    if row[2] == NONE and len(past_hold) == gen.chargers:
        row[2] = float(max(past_hold.values()))
    row[0], row[1] = float(gen.welcomed), float(len(gen.errors))
    out[slot * FIELDS:(slot + 1) * FIELDS] = row


async def _serve(gen: LoadGenerator, slot: int, progress: SynchronizedArray[float],
                 stop: MpEvent) -> None:
    done = asyncio.Event()
    task = asyncio.create_task(gen.run(done))
    row = [0.0, 0.0, NONE, NONE]
    past_hold: dict[str, int] = {}
    try:
        while not stop.is_set() and not task.done():
            _publish(gen, row, progress, slot, past_hold)
            await asyncio.sleep(PUBLISH_S)
    finally:
        done.set()
        await task
        _publish(gen, row, progress, slot, past_hold)


def _worker(share: Share, slot: int, progress: SynchronizedArray[float], stop: MpEvent,
            conn: Connection) -> None:
    """One worker's life (rules 1, 3, 4); runs in the spawned process."""
    credentials = None
    if share.tls_dirs is not None:
        ids = [f"{share.prefix}-{share.first + k:04d}" for k in range(share.chargers)]
        credentials = _credentials(dict(zip(ids, share.tls_dirs, strict=True)))
    gen = LoadGenerator(share.address, chargers=share.chargers, group=share.group,
                        cycle_s=share.cycle_s, prefix=share.prefix, credentials=credentials,
                        first=share.first, spread=share.spread)
    asyncio.run(_serve(gen, slot, progress, stop))
    conn.send(WorkerReport(fleet=gen.fleet, received=gen.received, errors=gen.errors,
                           lag=gen.lag))
    conn.close()


class Fleet:
    """`chargers` FakeChargers over `processes` workers against the master at `address`;
    `tls_dir(charger_id)` gives a charger's certificate folder (None: plaintext)."""

    def __init__(self, address: str, *, chargers: int, group: str, cycle_s: float,
                 processes: int, tls_dir: Callable[[str], Path] | None = None,
                 prefix: str = "bench") -> None:
        self.chargers = chargers
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._progress: SynchronizedArray[float] = ctx.Array("d", FIELDS * processes)
        self._procs: list[mp.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._theirs: list[Connection] = []  # the workers' ends, closed here once started
        for slot, (first, count) in enumerate(shares(chargers, processes)):
            dirs = None if tls_dir is None else tuple(
                str(tls_dir(f"{prefix}-{first + k:04d}")) for k in range(count))
            share = Share(address=address, group=group, cycle_s=cycle_s, first=first,
                          chargers=count, spread=chargers, prefix=prefix, tls_dirs=dirs)
            ours, theirs = ctx.Pipe(duplex=False)
            self._progress[slot * FIELDS:(slot + 1) * FIELDS] = [0.0, 0.0, NONE, NONE]
            proc = ctx.Process(target=_worker, args=(share, slot, self._progress,
                                                     self._stop, theirs),
                               name=f"loadgen-{slot}", daemon=True)
            self._procs.append(proc)
            self._conns.append(ours)
            self._theirs.append(theirs)

    def start(self) -> None:
        for proc, theirs in zip(self._procs, self._theirs, strict=True):
            proc.start()
            theirs.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _rows(self) -> list[list[float]]:
        values = list(self._progress[:])
        return [values[k:k + FIELDS] for k in range(0, len(values), FIELDS)]

    def welcomed(self) -> int:
        return int(sum(r[0] for r in self._rows()))

    def failed(self) -> int:
        """Streams failed so far, and workers that died."""
        dead = sum(1 for p in self._procs if p.exitcode not in (None, 0))
        return int(sum(r[1] for r in self._rows())) + dead

    def first_steady(self) -> int | None:
        """The first cycle past the hold that every worker saw complete (rule 3)."""
        firsts = [r[2] for r in self._rows()]
        return None if NONE in firsts else int(max(firsts))

    def last_seen(self) -> int | None:
        """The last cycle every worker has seen Limits of (rule 3)."""
        lasts = [r[3] for r in self._rows()]
        return None if NONE in lasts else int(min(lasts))

    def stop(self) -> Receipts:
        """Stop every worker and merge their reports (rule 4)."""
        self._stop.set()
        reports: list[WorkerReport] = []
        deadline = time.monotonic() + REPORT_TIMEOUT_S
        for proc, conn in zip(self._procs, self._conns, strict=True):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"{proc.name} sent no report in {REPORT_TIMEOUT_S} s "
                                   f"(exit code {proc.exitcode})")
            reports.append(conn.recv())
        for proc in self._procs:
            proc.join(REPORT_TIMEOUT_S)
        received: dict[int, dict[str, Arrival]] = {}
        for r in reports:
            for k, got in r.received.items():
                received.setdefault(k, {}).update(got)
        return Receipts(chargers=self.chargers,
                        fleet=[c for r in reports for c in r.fleet], received=received,
                        errors={cid: e for r in reports for cid, e in r.errors.items()},
                        lag=[r.lag for r in reports])

    def close(self) -> None:
        """Ends workers still running (after a failure); idempotent."""
        self._stop.set()
        for proc in self._procs:
            if proc.pid is not None:
                proc.join(5.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5.0)
