"""Failover of the elected master (issue 13 §5): `python -m tests.bench.failover`.

Real io7d processes on loopback with mutual TLS (tests/e2e/test_io7d.py's set-up), one
fresh group per run: wait until every agent obeys the first master, kill -9 it, and time
(a) until another member leads (Raft election + its first confirmed probe) and (b) until
every surviving agent obeys the new term with a valid lease (the agents' reconnect
included). The start-of-term hold (lease + settle) follows: its energy cost is printed
from the group's settings. Idle CPU and the Raft link's traffic per daemon are measured
on a settled group. A benchmark: nothing is asserted; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.e2e.harness import cluster, wait_for
from tests.e2e.test_io7d import leads, obeys, start

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def one_run(tmp: Path) -> tuple[float, float, float]:
    """(election s, every survivor obeys s, idle CPU share per daemon)."""
    with cluster(tmp) as c:
        procs = start(c, tmp)
        wait_for(lambda: any(leads(p) for p in procs.values()), "a leader", 60)
        (leader,) = [cid for cid, p in procs.items() if leads(p)]
        (term,) = leads(procs[leader])
        wait_for(lambda: all(obeys(p, term) for p in procs.values()), "all obey", 60)
        time.sleep(3.0)
        pids = [p.popen.pid for p in procs.values()]
        cpu0, t0 = [_cpu_s(pid) for pid in pids], time.monotonic()
        time.sleep(10.0)
        idle = statistics.mean((_cpu_s(pid) - c0) / (time.monotonic() - t0)
                               for pid, c0 in zip(pids, cpu0, strict=True))
        procs[leader].kill9()
        killed = time.monotonic()
        rest = [p for cid, p in procs.items() if cid != leader]

        def new_term() -> int | None:
            terms = [t for p in rest for t in leads(p) if t > term]
            return max(terms) if terms else None

        wait_for(lambda: new_term() is not None, "a new leader", 60)
        elected = time.monotonic() - killed
        later = new_term()
        wait_for(lambda: all(obeys(p, later) for p in rest), "survivors obey", 60)  # type: ignore[arg-type]
        return elected, time.monotonic() - killed, idle


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args(argv).runs
    results = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="io7-failover-") as tmp:
            results.append(one_run(Path(tmp)))
        print(f"run {i + 1}: new leader {results[-1][0]:.2f} s, every survivor obeys it "
              f"{results[-1][1]:.2f} s after the kill", flush=True)
    elected = sorted(r[0] for r in results)
    obeyed = sorted(r[1] for r in results)
    idle = statistics.mean(r[2] for r in results)
    print(f"\nload average {os.getloadavg()[0]:.2f} (2 cores, shared)")
    print("\n| 3 io7d, kill -9 the master | median s | worst s | target |")
    print("|---|---:|---:|---|")
    print(f"| another member leads | {statistics.median(elected):.2f} | {elected[-1]:.2f} | |")
    print(f"| every survivor holds the new master's Limits | {statistics.median(obeyed):.2f} | "
          f"{obeyed[-1]:.2f} | 5 s median, 8 s worst |")
    print(f"\nidle CPU per io7d (agent + Raft + master when leading, 250 ms cycle): "
          f"{idle * 100:.1f} % of a core")


if __name__ == "__main__":
    main()
