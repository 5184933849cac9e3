"""deploy/grafana/io7-dashboard.json asks only for series /metrics serves (a renamed
metric breaks this test, not an operator's dashboard) and is a dashboard Grafana imports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.web.test_metrics_view import leader, scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "io7-dashboard.json"


def test_every_metric_the_dashboard_reads_is_served() -> None:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"]]
    used = {m for e in exprs for m in re.findall(r"\bio7_[a-z0-9_]+", e)}
    served = {name for name, _ in scrape(leader())[0]}
    assert used and used <= served, f"not served: {sorted(used - served)}"
    assert len(used) >= 15  # phases, connectors, cycle, CT, lease, OCPP, election


def test_the_dashboard_is_importable() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}"  # chosen at import (__inputs)
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
