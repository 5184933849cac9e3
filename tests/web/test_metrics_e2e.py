"""/metrics of real io7d daemons (issue 14 §3, §5): scraped over HTTP, parsed by
prometheus-client's text-format parser, and matched with the real `io7ctl watch --json`.

Three io7d on loopback (dynamic mode, the CT kit simulator on io7-01's [ct], so io7-01
is the preferred leader), each serving [web] in plaintext with a metrics token. The
leader's scrape names its cycle (`io7_group_cycle`); io7ctl watch prints every cycle's
GroupStatus, so each scrape is compared with the status of the SAME cycle: per phase
limit, CT, other load, reserved, available and allocated; per connector offer,
allocation, draw per wired line, status and reason. A follower serves its own charger
and the election (same term, same leader), no group series. No token: 401.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import (
    CT_TABLE,
    Cluster,
    Proc,
    charger_dir,
    cluster,
    free_port,
    site_pki,
    wait_for,
)
from tests.e2e.test_io7d import IDS, leads, port_pairs
from tests.web.support import (
    ALL_PHASES,
    ELECTION,
    QUICK_TUNING,
    SIM_PLUGGED,
    WEB_PLAIN,
    io7_toml,
    printed,
    spawn_io7d,
)

pytestmark = pytest.mark.e2e
TOKEN = "e2e-metrics-token-0123456789"
BOUND_S = 30.0  # generous: a shared, loaded machine
GROUP = """phases = ["L1", "L2", "L3"]
mode = "dynamic"
limit_a = 40
fallback_limit_a = 20
ct_placement = "other_loads"
margin_a = 0
offline_strategy = "maximise"
ct_charger = "io7-01"
"""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def start(c: Cluster, tmp: Path, ct_port: int) -> tuple[dict[str, Proc], dict[str, str]]:
    """The three io7d, and each one's master address."""
    ports = port_pairs(len(IDS))
    members = "\n".join(f'"{cid}" = "127.0.0.1:{p}"' for cid, p in zip(IDS, ports, strict=True))
    (tmp / "token").write_text(TOKEN + "\n")
    (tmp / "token").chmod(0o600)  # readable by its owner alone (webconfig rule 2)
    ct = CT_TABLE.format(clamps='1 = "L1"\n2 = "L2"\n3 = "L3"', port=ct_port)
    web = f'{WEB_PLAIN}metrics_token_file = "{tmp / "token"}"\n'
    procs = {}
    for cid in IDS:
        state = tmp / cid
        state.mkdir()
        text = io7_toml(state=state, cid=cid, members=members, wiring=(ALL_PHASES, '["L2"]'),
                        tls=f'dir = "{charger_dir(cid)}"\ncrl = "{site_pki().crl}"',
                        master=ELECTION, group=GROUP, tuning=QUICK_TUNING,
                        more=web + SIM_PLUGGED)
        procs[cid] = spawn_io7d(c, cid, tmp / f"{cid}.toml",
                                text + (ct if cid == "io7-01" else ""))
    return procs, {cid: f"127.0.0.1:{p}" for cid, p in zip(IDS, ports, strict=True)}


def scrape(url: str, token: str | None = TOKEN) -> Samples:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    r = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    r.raise_for_status()
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def one(samples: Samples, name: str, **labels: str) -> float:
    """The value of the one series of `name` whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items()
             if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, f"{name} {labels}: {len(found)} series"
    return found[0]


class Watch:
    """`io7ctl watch --json` in the background: every GroupStatus by cycle number."""

    def __init__(self, c: Cluster, address: str) -> None:
        self.proc = subprocess.Popen([*c.ctl_args(address), "watch", "--json",
                                      "--interval-ms", "0"], stdout=subprocess.PIPE)
        self.by_cycle: dict[int, dict[str, Any]] = {}
        self.newest = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            status = json.loads(line)
            self.by_cycle[int(status["cycle"])] = status
            self.newest = int(status["cycle"])

    def passed(self, cycle: int) -> bool:
        """io7ctl printed `cycle`, or went well past it (WatchStatus may skip one)."""
        return cycle in self.by_cycle or self.newest > cycle + 8

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def compare(s: Samples, st: dict[str, Any]) -> int:
    """Assert the scrape shows `st` (io7ctl's JSON of the same cycle); returns how many
    values were compared."""
    n = 0
    g = {"group": "garage"}
    for p in st["phases"]:
        ph = {**g, "phase": p["phase"].removeprefix("PHASE_")}
        for field in ("limit_a", "other_load_a", "reserved_offline_a", "available_a",
                      "allocated_a", "configured_limit_a"):
            name = f"io7_phase_{field.removesuffix('_a')}_amperes"
            assert one(s, name, **ph) == p[field], (name, ph)
            n += 1
        assert one(s, "io7_phase_ct_amperes", **ph) == p["ct_a"]
        n += 1
    for m in st["members"]:
        assert one(s, "io7_member_online", **g, charger=m["charger_id"]) == m["online"]
        for c in m["connectors"]:
            cl = {**g, "charger": m["charger_id"], "connector": str(c["connector_id"])}
            assert one(s, "io7_connector_offered_amperes", **cl) == c["offered_a"]
            assert one(s, "io7_connector_allocated_amperes", **cl) == c["allocated_a"]
            status = c["status"].removeprefix("CONNECTOR_STATUS_").lower()
            reason = c["reason"].removeprefix("LIMIT_REASON_").lower()
            assert one(s, "io7_connector_status", **cl, status=status) == 1
            assert one(s, "io7_connector_reason", **cl, reason=reason) == 1
            n += 4
            for line in ("l1", "l2", "l3"):
                if c["wiring"][line] != "PHASE_UNSPECIFIED":
                    assert one(s, "io7_connector_draw_amperes", **cl,
                               line=line.upper()) == c["measured_a"][line], (cl, line)
                    n += 1
    return n


def test_metrics_match_io7ctl_of_the_same_cycle_and_a_follower_serves_its_own(
        tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        ct_port = free_port()
        c.ct_sim(ct_port, base_a=8.0)
        procs, addresses = start(c, tmp_path, ct_port)
        wait_for(lambda: all(printed(p, "web") for p in procs.values()), "every UI's URL",
                 BOUND_S)
        urls = {cid: str(printed(p, "web")) for cid, p in procs.items()}
        wait_for(lambda: bool(leads(procs["io7-01"])), "io7-01 (the CT holder) leads",
                 BOUND_S)

        def charging(s: Samples) -> bool:
            allocated = [v for (n, _), v in s.items() if n == "io7_connector_allocated_amperes"]
            online = [v for (n, _), v in s.items() if n == "io7_member_online"]
            return len(online) == 3 and all(online) and sum(allocated) > 0

        wait_for(lambda: charging(scrape(urls["io7-01"])), "the leader allocates", BOUND_S)
        assert httpx.get(f"{urls['io7-01']}/metrics", timeout=10).status_code == 401

        watch = Watch(c, addresses["io7-01"])
        try:
            matched: list[int] = []
            deadline = time.monotonic() + BOUND_S
            while len(matched) < 2 and time.monotonic() < deadline:
                s = scrape(urls["io7-01"])
                cycle = int(one(s, "io7_group_cycle", group="garage"))
                wait_for(functools.partial(watch.passed, cycle),
                         f"io7ctl watch shows cycle {cycle}")
                if cycle in watch.by_cycle:  # WatchStatus may skip a cycle: try another
                    matched.append(compare(s, watch.by_cycle[cycle]))
                time.sleep(0.1)
            assert len(matched) == 2, f"only {len(matched)} cycles matched"
            assert one(s, "io7_cycle_duration_seconds_count", group="garage") > 0
            assert one(s, "io7_ct_read_errors_total", group="garage") == 0  # the sim answers
            term = int(watch.by_cycle[watch.newest]["term"])
        finally:
            watch.close()
        print(f"values compared per scrape: {matched}")

        follower = scrape(urls["io7-02"])
        names = {n for n, _ in follower}
        assert not [n for n in names if n.startswith(("io7_phase_", "io7_connector_",
                                                      "io7_group_", "io7_cycle_"))]
        assert one(follower, "io7_election_term", group="garage") == term
        assert one(follower, "io7_election_leader", group="garage", charger="io7-01") == 1
        assert one(follower, "io7_election_leading", group="garage", charger="io7-02") == 0
        assert one(follower, "io7_charger_lease_ok", charger="io7-02") == 1
        assert one(follower, "io7_charger_term_applied", charger="io7-02") == term
        assert {"io7_charger_offered_amperes", "io7_charger_lease_expiries_total"} <= names
