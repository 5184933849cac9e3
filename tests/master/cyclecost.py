"""The master's CPU per cycle, in process (issue 15): `python -m tests.master.cyclecost`.

A real `master.service.Master` (plaintext, no server, virtual clock) with N chargers of the
bench's load generator (tests/bench/loadgen.py FakeCharger: two three-phase sockets, EVs
that follow their Limits, energy registers that grow). Per cycle, measured with
`time.process_time`:

- reports: every charger's AgentState decoded and judged, as `Master._read` does;
- cycle: `Master.run_cycle` (the control cycle, the Limits queued, the status published);
- send: every queued Limits taken from its outbox and serialised, as the stream's write does.

`--idle F` leaves a fraction F of the chargers without an EV wanting power (they report the
same values every cycle). `--status` asks for the status every cycle (a GetStatus client
or the web UI watching). Medians per run over `--cycles` cycles after the start-of-term
hold; `--repeat` runs (the machine is shared). Nothing is asserted: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hw.logconfig import configure_logging
from master import wire
from master.allocation import Phase
from master.config import load_master_config
from master.service import Master
from tests.bench.loadgen import FakeCharger

TOML = """
[master]
id = "cost"
listen = "127.0.0.1:0"
state_db = "members.sqlite3"
cycle_ms = 1000

[group]
name = "garage"
mode = "dynamic"
limit_a = {limit_a}
fallback_limit_a = {fallback_a}
ct_placement = "other_loads"
offline_strategy = "maximise"
closed = false

[ct]
enabled = true
rated_a = 2000
[ct.tcp]
host = "127.0.0.1"
port = 1

[tls]
plaintext = true
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def run(chargers: int, cycles: int, idle: float, status: bool) -> dict[str, float]:
    """Median CPU ms per cycle of each part, over `cycles` cycles after the hold."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "master.toml"
        limit = 20.0 + 2 * chargers * 10.0
        path.write_text(TOML.format(limit_a=limit, fallback_a=limit / 2))
        clock = Clock()
        master = Master(load_master_config(path), clock=clock)
        master.ct = None  # CT samples are fed below, not read over Modbus
        fleet = [FakeCharger(f"c{k:04d}", "garage") for k in range(chargers)]
        idle_ids = {c.charger_id for c in fleet[:round(idle * chargers)]}
        decoders = {c.charger_id: wire.ReportDecoder() for c in fleet}  # one per stream
        for c in fleet:
            member = wire.member_from_hello(c.hello())
            master.control.member_connected(member, clock.now, address="sim")
            master.outbox[c.charger_id] = asyncio.Queue(maxsize=4)
        parts: dict[str, list[float]] = {"reports": [], "cycle": [], "send": [],
                                         "status": [], "total": []}
        hold = 8
        for k in range(hold + cycles):
            clock.now += 1.0
            states = [c.state(clock.now, 1.0) for c in fleet]
            for c, s in zip(fleet, states, strict=True):
                if c.charger_id in idle_ids:  # no EV: the same values every cycle
                    for conn in s.connectors:
                        conn.wants_power = False
                        conn.current_a.l1 = conn.current_a.l2 = conn.current_a.l3 = 0.0
                        conn.energy_import_wh = conn.session_energy_wh = 0.0
            t0 = time.process_time()
            for s in states:
                master.control.report(decoders[s.charger_id].decode(s, clock()))
                master.site_limits.from_agent(s.charger_id, s)
            t1 = time.process_time()
            master.control.ct_sample({Phase.L1: 20.0, Phase.L2: 21.0, Phase.L3: 19.5},
                                     clock.now)
            await master.run_cycle()
            t2 = time.process_time()
            for c in fleet:
                box = master.outbox[c.charger_id]
                while not box.empty():
                    msg = box.get_nowait()
                    msg.SerializeToString()
                    c.last, c.last_at_s = msg.limits, clock.now
            t3 = time.process_time()
            if status:
                master.status.SerializeToString()
            t4 = time.process_time()
            if k >= hold:
                for name, dt in (("reports", t1 - t0), ("cycle", t2 - t1), ("send", t3 - t2),
                                 ("status", t4 - t3), ("total", t4 - t0)):
                    parts[name].append(dt * 1000)
        master.close()
        return {name: statistics.median(v) for name, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="200,500,1000")
    ap.add_argument("--cycles", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle", type=float, default=0.0)
    ap.add_argument("--status", action="store_true")
    args = ap.parse_args()
    configure_logging("INFO", stream=sys.stderr)  # the master's default level
    print(f"cycles={args.cycles} idle={args.idle} status_every_cycle={args.status}")
    print("chargers  reports  cycle  send  status  total (median CPU ms per cycle; "
          "runs' medians, then their median)")
    for n in (int(s) for s in args.sizes.split(",")):
        runs = [asyncio.run(run(n, args.cycles, args.idle, args.status))
                for _ in range(args.repeat)]
        cells = [f"{statistics.median(r[k] for r in runs):6.2f}"
                 for k in ("reports", "cycle", "send", "status", "total")]
        totals = " ".join(f"{r['total']:.1f}" for r in runs)
        print(f"{n:8d}  {'  '.join(cells)}   runs: {totals}", flush=True)


if __name__ == "__main__":
    main()
