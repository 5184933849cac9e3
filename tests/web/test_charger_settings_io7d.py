"""The Charger Current Limit changed through a real io7d's REST API (issue 14 §1): a lone
charger (its own master, no election), plaintext on loopback, two simulated EVs plugged
in. PUT 10 A: io7.toml says 10 with its comments, the agent's offers and the master's
allocation for this charger follow to at most 10 A per line without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import GENEROUS_S, cluster, free_port, wait_for
from tests.web.support import (
    ELECTION,
    QUICK_TUNING,
    SIM_PLUGGED,
    WEB_PLAIN,
    io7_toml,
    spawn_io7d,
    ui_of,
)

pytestmark = pytest.mark.e2e
FOLLOW_BOUND_S = 30.0  # generous: a shared, loaded machine (measured ~1 s idle)


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
    text = io7_toml(state=tmp_path / "state", head="# a lone io7 on the test bench\n",
                    limit_note="  # manual 6.3: the supply cable's rating",
                    members=f'"io7-01" = "127.0.0.1:{free_port()}"', master=ELECTION,
                    tuning=QUICK_TUNING, more=WEB_PLAIN + SIM_PLUGGED)
    with cluster(tmp_path, tls=False) as c, httpx.Client(timeout=10.0) as client:
        proc = spawn_io7d(c, "io7-01", path, text)
        url, password_file = ui_of(proc, GENEROUS_S)
        password = password_file.read_text().strip()
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
