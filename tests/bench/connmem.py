"""What one agent connection costs the master: option variants side by side (issue 15).

`python -m tests.bench.connmem --sizes 200,1000 --rounds 2 base ping5 ...` runs
tests/bench/cluster.py's size run (real master, real fleet, mutual TLS) once per variant
per round, the variants interleaved (their order reversed every other round), and prints
per run the master's CPU over the window, its RSS at the window's end and the load
average before the run. The master is `master.service` itself, started through `master`
below so that a variant can:

1. change server options (`options`: replaces or adds to protos.link.MASTER_SERVER_OPTIONS),
2. set environment variables for the master alone (`env`, e.g. MALLOC_ARENA_MAX, read by
   glibc at start-up),
3. probe: every PROBE_S the master writes a line to IO7_BENCH_PROBE (monotonic s, RSS,
   anonymous RSS, glibc's heap in use and free, Python's allocated blocks, threads, TCP
   segments its sockets sent and received; with PYTHONTRACEMALLOC=1, Python's own share),
   and the run reports the last line inside the window (where the RSS goes) and the
   segments per second over it (what the wire costs).

Measurement only: nothing here changes what the master does unless a variant says so.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from master import service
from protos.link import MASTER_SERVER_OPTIONS
from tests.bench import cluster
from tests.e2e.harness import Cluster, Proc

OPTIONS_ENV = "IO7_BENCH_SERVER_OPTIONS"
PROBE_ENV = "IO7_BENCH_PROBE"
PROBE_S = 2.0


@dataclass(frozen=True, slots=True)
class Variant:
    """Server options (replacing or adding to MASTER_SERVER_OPTIONS) and environment."""

    options: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


VARIANTS: dict[str, Variant] = {
    "base": Variant(),
    "ping5": Variant(options={"grpc.keepalive_time_ms": 5000}),
    "noping": Variant(options={"grpc.keepalive_time_ms": 3_600_000}),
    "arena2": Variant(env={"MALLOC_ARENA_MAX": "2"}),
    "chunk": Variant(options={"grpc.experimental.tcp_read_chunk_size": 4096,
                              "grpc.experimental.tcp_min_read_chunk_size": 256,
                              "grpc.experimental.tcp_max_read_chunk_size": 16384}),
    "tsi4k": Variant(options={"grpc.tsi.max_frame_size": 4096}),
    "tsi1k": Variant(options={"grpc.tsi.max_frame_size": 1024}),
    "traced": Variant(env={"PYTHONTRACEMALLOC": "1"}),  # rule 3: Python's own share
    "nobdp": Variant(options={"grpc.http2.bdp_probe": 0}),
    "after": Variant(options={"grpc.http2.bdp_probe": 0, "grpc.tsi.max_frame_size": 4096}),
    "window": Variant(options={"grpc.http2.bdp_probe": 0,
                               "grpc.http2.lookahead_bytes": 16384}),
}


# --- inside the master ------------------------------------------------------------------
class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def probe_line() -> dict[str, float]:
    """This process's memory now (MB) and its thread count."""
    status = dict(line.split(":", 1) for line in
                  Path("/proc/self/status").read_text().splitlines())

    def kb(key: str) -> float:
        return int(status[key].split()[0]) / 1000

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    mi = libc.mallinfo2()
    return {"at_s": time.monotonic(), "rss": kb("VmRSS"), "anon": kb("RssAnon"),
            "file": kb("RssFile"), "heap_used": (mi.uordblks + mi.hblkhd) / 1e6,
            "heap_free": mi.fordblks / 1e6, "mmapped": mi.hblkhd / 1e6,
            "py_blocks": sys.getallocatedblocks() / 1e6,
            "threads": int(status["Threads"].split()[0]), **_segments(), **_traced()}


def _segments() -> dict[str, float]:
    """TCP segments this process's established sockets sent and received so far (ss)."""
    out = subprocess.run(["ss", "-tinpH", "state", "established"], capture_output=True,
                         text=True, check=False).stdout.splitlines()
    mine, sent, got = f"pid={os.getpid()},", 0, 0
    for head, info in zip(out[::2], out[1::2], strict=False):
        if mine in head:
            sent += int(m.group(1)) if (m := re.search(r"segs_out:(\d+)", info)) else 0
            got += int(m.group(1)) if (m := re.search(r"segs_in:(\d+)", info)) else 0
    return {"segs_out": sent, "segs_in": got}


_SNAPS: list[float] = []


def _traced() -> dict[str, float]:
    """With PYTHONTRACEMALLOC: Python's traced memory (MB) and the top files by size."""
    if not tracemalloc.is_tracing():
        return {}
    _SNAPS.append(time.monotonic())
    top = [] if len(_SNAPS) % 8 else tracemalloc.take_snapshot().statistics("filename")[:8]
    return {"py_traced": tracemalloc.get_traced_memory()[0] / 1e6,
            **{f"py:{s.traceback[0].filename.rsplit('/', 2)[-1]}": s.size / 1e6 for s in top}}


def _probe_forever(path: Path) -> None:
    while True:
        with path.open("a") as f:
            f.write(json.dumps(probe_line()) + "\n")
        time.sleep(PROBE_S)


def master() -> int:
    """master.service's main with the variant's server options (rules 1 and 3)."""
    extra = json.loads(os.environ.get(OPTIONS_ENV, "{}"))
    base = [(k, v) for k, v in MASTER_SERVER_OPTIONS if k not in extra]
    MASTER_SERVER_OPTIONS[:] = [*base, *extra.items()]  # the list master.service serves
    if probe := os.environ.get(PROBE_ENV):
        threading.Thread(target=_probe_forever, args=(Path(probe),), daemon=True).start()
    return service.main()


# --- the driver -------------------------------------------------------------------------
@contextmanager
def _master_as(variant: Variant, probe: Path) -> Iterator[None]:
    """Size runs start the master through master() with `variant`'s options and env."""
    original = cluster.start_master

    def start(c: Cluster, **kw: object) -> tuple[Proc, str]:
        saved = dict(os.environ)
        os.environ.update({**variant.env, OPTIONS_ENV: json.dumps(variant.options),
                           PROBE_ENV: str(probe),
                           "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        try:
            spawn = c.spawn
            c.spawn = lambda name, *args: spawn(  # type: ignore[method-assign]
                name, *["-m", "tests.bench.connmem", "master"], *args[2:]) \
                if args[:2] == ("-m", "master.service") else spawn(name, *args)
            return original(c, **kw)  # type: ignore[arg-type]
        finally:
            os.environ.clear()
            os.environ.update(saved)

    cluster.start_master = start
    try:
        yield
    finally:
        cluster.start_master = original


def run_one(tmp: Path, name: str, chargers: int, cycles: int) -> dict[str, object]:
    """One size run of `name`: CPU (core), RSS (MB), load average, the probe's last line
    inside the window."""
    probe = tmp / "probe.jsonl"
    with _master_as(VARIANTS[name], probe):
        run = cluster.run_size(tmp, chargers, cycles=cycles)
    lines = [json.loads(x) for x in probe.read_text().splitlines()]
    inside = [x for x in lines if x["at_s"] <= run.window_at_s[1]] or lines
    tops = [x for x in inside if any(k.startswith("py:") for k in x)]
    if tops:
        inside.append({**inside[-1], **{k: v for k, v in tops[-1].items()
                                        if k.startswith("py:")}})
    rate = {}
    if len(inside) > 2:  # segments per second over the window's probes
        a, b = next((x for x in inside if x["at_s"] >= run.window_at_s[0]), inside[0]), inside[-1]
        dt = max(1e-9, b["at_s"] - a["at_s"])
        rate = {"out_per_s": (b["segs_out"] - a["segs_out"]) / dt,
                "in_per_s": (b["segs_in"] - a["segs_in"]) / dt}
    return {"variant": name, **rate, "chargers": chargers, "cpu": run.cpu_s / run.wall_s,
            "rss": run.rss_mb, "load": run.loadavg, "window_s": run.wall_s,
            "probe": inside[-1]}


def main(argv: list[str] | None = None) -> int:
    if (argv or sys.argv[1:])[:1] == ["master"]:
        sys.argv = [sys.argv[0], *sys.argv[2:]]
        return master()
    ap = argparse.ArgumentParser(prog="connmem")
    ap.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    ap.add_argument("--sizes", default="1000")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args(argv)
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="connmem-") as tmp:
        for r in range(args.rounds):
            for n in (int(s) for s in args.sizes.split(",")):
                order = args.variants if r % 2 == 0 else args.variants[::-1]
                for name in order:
                    res = run_one(Path(tmp) / f"r{r}-n{n}-{name}", name, n, args.cycles)
                    print(json.dumps(res), flush=True)
                    results.append(res)
    for n in (int(s) for s in args.sizes.split(",")):
        for name in args.variants:
            mine = [x for x in results if x["variant"] == name and x["chargers"] == n]
            cpu = statistics.median(float(str(x["cpu"])) for x in mine)
            print(f"{n:5d} {name:8s} cpu {cpu:.3f}"
                  f" rss {statistics.median(float(str(x['rss'])) for x in mine):.0f} MB"
                  f" load {[round(float(str(x['load'])), 1) for x in mine]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
