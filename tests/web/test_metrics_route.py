"""GET /metrics through FastAPI and a real Station (a lone charger's io7.toml, its real
Agent, not running): the bearer token option, the content type, and a member that does
not lead serving its charger and the election only. The app holds this router alone (the
e2e test scrapes io7d's whole app)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from master.web import metrics
from master.web.accounts import Accounts
from master.web.station import Station
from tests.web.support import ALL_PHASES, WEB_PLAIN, io7_toml, lone_agent

TOKEN = "0123456789abcdef0123"
OCPP = """
[ocpp]
enabled = true
url = "ws://127.0.0.1:9/ocpp"
"""


def get(tmp: Path, token_line: str, headers: dict[str, str], *, steps: int = 1,
        extra: str = "", queue: int = 0) -> httpx.Response:
    """GET /metrics after the agent ran `steps` steps (0: as at io7d's start), with
    `queue` MeterValues messages waiting in its OCPP outbox (with `extra` = OCPP)."""
    (tmp / "token").write_text(TOKEN + "\n")
    (tmp / "token").chmod(0o600)  # readable by its owner alone (webconfig rule 2)
    text = io7_toml(state=tmp / "state", wiring=(ALL_PHASES, '["L1"]'),
                    more=f"{WEB_PLAIN}{token_line}\n") + extra

    async def run() -> httpx.Response:
        with lone_agent(tmp, text) as (config, agent):
            for _ in range(steps):
                await agent.step()
            for _ in range(queue):
                assert agent.sessions is not None
                agent.sessions.store.enqueue("MeterValues", {"connectorId": 1, "meterValue": []},
                                             local_tx_id=None)
            app = FastAPI()
            app.state.station = Station(config, agent, web_urls={},
                                        accounts=Accounts(tmp / "users.json", {}))
            app.include_router(metrics.router)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://io7") as client:
                return await client.get("/metrics", headers=headers)

    return asyncio.run(run())


def names(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_no_token_configured_no_login_needed(tmp_path: Path) -> None:
    r = get(tmp_path, "", {})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = names(r.text)
    # not leading (the master is not running): the charger and the election only
    assert {"io7_charger_offered_amperes", "io7_charger_lease_ok", "io7_election_term",
            "io7_charger_lease_expiries_total"} <= got
    assert not [n for n in got if n.startswith(("io7_phase_", "io7_connector_"))]


def test_a_scrape_before_the_agents_first_step_answers(tmp_path: Path) -> None:
    r = get(tmp_path, "", {}, steps=0)  # failed with a KeyError (500) before the guard
    assert r.status_code == 200
    got = names(r.text)
    assert "io7_charger_lease_ok" in got and "io7_charger_offered_amperes" not in got


@pytest.mark.parametrize(("headers", "code"), [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token-of-some-length"}, 401),
    ({"Authorization": f"Basic {TOKEN}"}, 401),
    ({"Authorization": f"Bearer {TOKEN}"}, 200),
    ({"Authorization": f"bearer {TOKEN}"}, 200),
])
def test_a_configured_token_is_required(tmp_path: Path, headers: dict[str, str],
                                        code: int) -> None:
    r = get(tmp_path, 'metrics_token_file = "token"', headers)
    assert r.status_code == code
    if code == 401:
        assert r.headers["www-authenticate"] == "Bearer"
        assert "metrics_token_file" in r.json()["detail"]
    else:
        assert "io7_election_term" in names(r.text)


def test_openmetrics_when_asked(tmp_path: Path) -> None:
    r = get(tmp_path, "", {"Accept": "application/openmetrics-text;version=1.0.0,"
                                     "text/plain;version=0.0.4;q=0.5"})  # Prometheus' own
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")
    assert "io7_charger_lease_expiries_total" in r.text


def test_the_ocpp_link_state_and_queue_depth(tmp_path: Path) -> None:
    r = get(tmp_path, "", {}, extra=OCPP, queue=2)  # the link is not running: stopped
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    state = [(s.labels["state"], s.value) for s in fams["io7_ocpp_connection_state"].samples]
    assert state == [("stopped", 1.0)]
    assert fams["io7_ocpp_connected"].samples[0].value == 0
    assert fams["io7_ocpp_queue_messages"].samples[0].value == 2
