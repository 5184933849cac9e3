"""The Charger Current Limit changed through a real io7d's REST API (issue 14 §1): a lone
charger (its own master, no election), plaintext on loopback, two simulated EVs plugged
in. PUT 10 A: io7.toml says 10 with its comments, the agent's offers and the master's
allocation for this charger follow to at most 10 A per line without a restart."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Proc, cluster, wait_for

pytestmark = pytest.mark.e2e
FOLLOW_BOUND_S = 30.0  # generous: a shared, loaded machine (measured ~1 s idle)
IO7_TOML = """\
# a lone io7 on the test bench
[charger]
id = "io7-01"
current_limit_a = 32  # manual 6.3: the supply cable's rating
[connectors.1]
wiring = ["L1", "L2", "L3"]
[connectors.2]
wiring = ["L1", "L2", "L3"]
[tls]
plaintext = true
[master]
cycle_ms = 250
lease_cycles = 8
[group]
name = "garage"
mode = "static"
limit_a = 48
[group.tuning]
settle_s = 0.5
ramp_up_a = 80.0
[group.members]
"io7-01" = "127.0.0.1:{port}"
[web]
listen = "127.0.0.1:0"
plaintext = true
[sim]
evs = "plugged"
[state]
dir = "{state}"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _printed(p: Proc, key: str) -> Any:
    text = p.out.read_text() if p.out.exists() else ""
    for line in text.splitlines():
        if line.startswith("{") and key in (found := json.loads(line)):
            return found[key]
    assert p.popen.poll() is None, f"io7d exited: {p.err.read_text()[-2000:]}"
    return None


def _allocated_a(client: httpx.Client, url: str, headers: dict[str, str]) -> float | None:
    """The master's allocation for io7-01's connectors together, A per line (None: no
    status yet)."""
    r = client.get(f"{url}/api/group", headers=headers)
    if r.status_code != 200:
        return None
    for member in r.json()["members"]:
        if member["charger_id"] == "io7-01" and member["connectors"]:
            return float(sum(c["allocated_a"] for c in member["connectors"]))
    return None


def test_a_lower_charger_limit_reaches_the_agent_and_the_master(tmp_path: Path) -> None:
    path = tmp_path / "io7.toml"
    path.write_text(IO7_TOML.format(port=_free_port(), state=tmp_path / "state"))
    with cluster(tmp_path, tls=False) as c, httpx.Client(timeout=10.0) as client:
        proc = c.spawn("io7-01", "-m", "master.io7d", "--config", str(path))
        wait_for(lambda: _printed(proc, "web") and _printed(proc, "web_password_file"),
                 "io7d prints its UI and password file")
        url = _printed(proc, "web")
        password = Path(_printed(proc, "web_password_file")).read_text().strip()
        r = client.post(f"{url}/api/login", json={"user": "installer", "password": password})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        wait_for(lambda: (_allocated_a(client, url, auth) or 0.0) > 10.0,
                 "the master allocates io7-01 more than 10 A", FOLLOW_BOUND_S)

        r = client.put(f"{url}/api/charger/settings", headers=auth,
                       json={"changes": {"charger.current_limit_a": 10}})
        assert r.status_code == 200, r.text
        assert r.json()["applied"] == ["charger.current_limit_a"]
        assert not r.json()["restart_needed"]
        changed_at = time.monotonic()
        assert "current_limit_a = 10  # manual 6.3" in path.read_text()

        took = wait_for(lambda: (_allocated_a(client, url, auth) or 99.0) <= 10.0,
                        "the master's allocation for io7-01 follows to <= 10 A",
                        FOLLOW_BOUND_S)
        print(f"allocation <= 10 A {took:.2f} s after the PUT returned")
        time.sleep(1.0)  # a few cycles more: it stays there
        assert (_allocated_a(client, url, auth) or 99.0) <= 10.0
        offers: dict[int, float] = {}
        for e in proc.events("offer"):
            offers[e["connector_id"]] = e["current_a"]  # the latest per connector
        assert sum(offers.values()) <= 10.0, offers
        info = client.get(f"{url}/api/charger", headers=auth).json()
        assert info["charger_current_limit_a"] == 10.0
        r = client.put(f"{url}/api/charger/settings", headers=auth,
                       json={"changes": {"charger.current_limit_a": 5}})
        assert r.status_code == 400
        assert "charger.current_limit_a: 5 is outside the allowed range [6, 63]" in \
            r.json()["detail"]
        assert time.monotonic() - changed_at < 4 * FOLLOW_BOUND_S
