"""The handshake storm (issue 11 section 6): N load-generator chargers connected to a real
master, the master killed (SIGKILL, as a crash or power cut) and started again on the
same address with the same state folder; how long until every charger holds Limits of
the new term again. Over mutual TLS every reconnect is a full TLS 1.3 handshake with a
client certificate, all at once; plaintext is the comparison.

1. The chargers reconnect as agents do (tests/bench/loadgen.py rule 5: jittered backoff
   0.2 s doubling to 2 s), so the figure includes the backoff and the master's own start
   (process, imports, state), which are printed apart: kill to "listening", "listening"
   to the last Welcome, and to the last first Limits (the first cycle after a Welcome).
2. Whether the load generator, not the master, is what limits the figure: the CPU of
   this process (the generator and gRPC's threads) and of the new master over the storm,
   as fractions of one core. A generator near 1.0 core means the storm time is the
   generator's; the table says so.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.cluster import (
    BASE_A,
    CONNECT_TIMEOUT_S,
    GROUP,
    cpu_s,
    fleet_credentials,
    group_limit_a,
    start_master,
)
from tests.bench.loadgen import LoadGenerator
from tests.e2e.harness import Cluster, free_port

GENERATOR_BUSY_CORE = 0.9  # rule 2: above this the generator is the bottleneck


@dataclass(frozen=True, slots=True)
class StormResult:
    """One storm; times in s from the kill, CPU as fractions of one core."""

    chargers: int
    tls: bool
    listening_s: float  # kill to the new master's "listening" line (start and imports)
    welcomed_s: float  # kill to the last charger's Welcome of the new term
    limits_s: float  # kill to the last charger's first Limits of the new term
    attempts: int  # streams opened during the storm (refused attempts included)
    master_cpu_core: float  # the new master, from its spawn to the last first Limits
    generator_cpu_core: float  # this process over the same window
    loadavg: float

    @property
    def generator_bound(self) -> bool:
        return self.generator_cpu_core >= GENERATOR_BUSY_CORE


def _all_of_new_term(firsts: dict[int, dict[str, float]], old_term: int, n: int
                     ) -> float | None:
    """The last charger's first stamp of a term newer than `old_term`, once all have one."""
    newer = [got for term, got in firsts.items() if term > old_term]
    if not newer or len(newer[-1]) < n:
        return None
    return max(newer[-1].values())


def measure_storm(tmp: Path, chargers: int = 500, *, tls: bool = True,
                  timeout_s: float = 120.0) -> StormResult:
    """Connect `chargers`, wait until all hold Limits, kill the master, restart it."""
    tmp.mkdir(parents=True, exist_ok=True)
    loadavg = os.getloadavg()[0]
    c = Cluster(tmp)
    try:
        ct_port = free_port()
        c.ct_sim(ct_port, base_a=BASE_A)
        listen = f"127.0.0.1:{free_port()}"
        limit = group_limit_a(chargers)
        master, address = start_master(c, limit_a=limit, ct_port=ct_port, tls=tls,
                                       listen=listen)
        gen = LoadGenerator(address, chargers=chargers, group=GROUP, reconnect=True,
                            credentials=fleet_credentials if tls else None)

        async def storm() -> StormResult:
            stop = asyncio.Event()
            task = asyncio.create_task(gen.run(stop))
            try:
                await gen.wait_welcomed(CONNECT_TIMEOUT_S)
                deadline = time.monotonic() + CONNECT_TIMEOUT_S
                while (old := max(gen.firsts["limits"], default=0)) == 0 or \
                        len(gen.firsts["limits"][old]) < chargers:
                    if time.monotonic() > deadline:
                        raise TimeoutError("not every charger got Limits before the kill")
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)  # a steady cycle or so
                attempts0 = gen.attempts
                await asyncio.to_thread(master.kill9)
                killed = time.monotonic()
                own0 = cpu_s(os.getpid())
                again, _ = await asyncio.to_thread(
                    start_master, c, limit_a=limit, ct_port=ct_port, tls=tls, listen=listen,
                    name="master-restarted")
                listening = time.monotonic()
                welcomed = limits = None
                while limits is None:
                    if time.monotonic() > killed + timeout_s:
                        raise TimeoutError(
                            f"{len(gen.errors)} chargers without a stream {timeout_s} s "
                            f"after the restart, e.g. {next(iter(gen.errors.items()), '')}")
                    await asyncio.sleep(0.02)
                    welcomed = _all_of_new_term(gen.firsts["welcome"], old, chargers)
                    limits = _all_of_new_term(gen.firsts["limits"], old, chargers)
                window = time.monotonic() - killed  # the master was spawned at once
                master_cpu = cpu_s(again.popen.pid)
                own = cpu_s(os.getpid()) - own0
                assert welcomed is not None
                return StormResult(
                    chargers=chargers, tls=tls, listening_s=listening - killed,
                    welcomed_s=welcomed - killed, limits_s=limits - killed,
                    attempts=gen.attempts - attempts0, master_cpu_core=master_cpu / window,
                    generator_cpu_core=own / window, loadavg=loadavg)
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)

        return asyncio.run(storm())
    finally:
        c.close()
