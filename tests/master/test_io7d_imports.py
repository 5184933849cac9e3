"""Issue 15: a follower io7d stays small because the master's modules and the web app are
imported only when used (master/io7d.py rule 3, master/web/server.py rule 5). A fresh
interpreter imports io7d and its web server the way a follower does."""

from __future__ import annotations

import json
import subprocess
import sys

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
