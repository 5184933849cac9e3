"""Issue 15: a follower io7d stays small because the master's modules and the web app are
imported only when used (master/io7d.py rule 3, master/web/server.py rule 5). A fresh
interpreter imports io7d and its web server the way a follower does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from master.gctune import YOUNG_THRESHOLD

# Loaded at the first lead (master.service and what it imports) or at the first web
# request (master.web.app: fastapi, pydantic, prometheus-client), never at start.
NOT_AT_START = ("master.service", "master.control", "master.wire", "master.reports",
                "master.web.app", "fastapi", "pydantic", "prometheus_client", "numpy")


def test_a_follower_imports_neither_the_master_nor_the_web_app() -> None:
    probe = ("import json, sys, master.io7d, master.web.server; "
             f"print(json.dumps([m for m in {list(NOT_AT_START)!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out) == []


def test_an_agent_loads_grpc_only_with_a_master_and_numpy_only_for_its_own_balancing() -> None:
    """agent.service alone (what a lone charger in agent-only mode imports at start): no
    gRPC (agent/linktls.py, protos/tls.py import it where a link is made) and no engine."""
    probe = ("import json, sys, agent.service; "
             "print(json.dumps([m for m in ('grpc', 'numpy', 'agent.link') "
             "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    assert json.loads(out) == []


GC_PROBE = """
import asyncio, gc, json, sys
from pathlib import Path
from master import io7d
from master.io7dconfig import load_io7_config

seen = {"default": list(gc.get_threshold())}

async def run(config, stop):  # main's loop, without the agent and the election
    seen["in_main"] = list(gc.get_threshold())
    seen["frozen_at_start"] = gc.get_freeze_count()

class Raft:
    lease = None
    def valid_for_s(self, now_s):
        return 2.5

io7d.run = run
seen["rc"] = io7d.main(["--config", sys.argv[1]])

async def first_lead():
    raft = Raft()
    raft.lease = raft
    candidate = io7d.Candidate(load_io7_config(Path(sys.argv[1])), raft)
    before = gc.get_freeze_count()
    now = 1.0
    while not candidate.master_imported(now):
        await asyncio.sleep(0.01)
        now += 0.01
    seen["frozen_by_the_master_import"] = gc.get_freeze_count() - before
    await candidate.stop()

asyncio.run(first_lead())
print(json.dumps(seen))
"""


def test_io7d_tunes_the_collector_and_freezes_the_masters_modules_at_its_first_lead() -> None:
    """master/gctune.py: io7d raises the young threshold and freezes its start-up objects
    as io7-master does, and freezes the master's modules once imported at the first lead
    (issue 15: the collector took 12 % of a leader's CPU at 1 000 chargers)."""
    example = Path(__file__).resolve().parents[2] / "deploy" / "io7d" / "io7-01.toml"
    out = subprocess.run([sys.executable, "-c", GC_PROBE, str(example)], check=True,
                         capture_output=True, text=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["rc"] == 0
    assert seen["default"][0] < YOUNG_THRESHOLD
    assert seen["in_main"][0] == YOUNG_THRESHOLD
    assert seen["frozen_at_start"] > 10_000  # modules, classes, configuration
    assert seen["frozen_by_the_master_import"] > 10_000  # master.service, numpy, grpc
