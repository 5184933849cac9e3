"""io7d's REST API end to end (issue 14 §2): three real io7d on loopback (mutual TLS
between them, PySyncObj election), each serving its UI and API over HTTPS with its
charger certificate; httpx as the client, verifying the site CA.

One group for the whole module (it takes seconds to elect): the tests read it, and the
changes they make (the group limit, the viewer's password) are put back or harmless.
Each endpoint's happy path and refusals: 401 without login, 403 for a viewer, 400 with
the group rules' message, 409 with the leader's URL on a member that does not lead. A
wrong password is refused and appears in the charger's security log.
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from tests.e2e.harness import GENEROUS_S, Cluster, Proc, charger_dir, site_pki, wait_for
from tests.e2e.test_io7d import IO7_TOML, port_pairs
from tests.web.support import ui_of

pytestmark = pytest.mark.e2e
IDS = ("io7-01", "io7-02", "io7-03")
INSTALLED_A = 48  # IO7_TOML's [group] limit_a
WEB_TOML = """
[web]
listen = "127.0.0.1:{port}"
[web.members]
{urls}
"""


@dataclass
class Member:
    cid: str
    proc: Proc
    url: str = ""
    password_file: Path | None = None
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass
class Group:
    members: dict[str, Member]
    client: httpx.Client
    ca: ssl.SSLContext

    def login(self, cid: str, user: str = "installer", password: str | None = None
              ) -> str:
        m = self.members[cid]
        if password is None and user in m.tokens:
            return m.tokens[user]
        if password is None:
            assert m.password_file is not None
            password = m.password_file.read_text().strip()
        r = self.client.post(f"{m.url}/api/login", json={"user": user, "password": password})
        assert r.status_code == 200, r.text
        m.tokens[user] = r.json()["token"]
        return m.tokens[user]

    def call(self, method: str, cid: str, path: str, *, user: str | None = "installer",
             **kw: Any) -> httpx.Response:
        headers = {} if user is None else {"Authorization": f"Bearer {self.login(cid, user)}"}
        return self.client.request(method, f"{self.members[cid].url}{path}",
                                   headers=headers, **kw)

    def leader(self) -> str:
        found: list[str] = []

        def elected() -> bool:
            views = [self.call("GET", cid, "/api/election").json() for cid in self.members]
            leaders = {v["leader_id"] for v in views}
            if len(leaders) == 1 and None not in leaders and any(v["leading"] for v in views):
                found[:] = [leaders.pop()]
                return self.call("GET", found[0], "/api/group").status_code == 200
            return False

        wait_for(elected, "every member names one leader that serves /api/group", 60)
        return found[0]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    tmp = tmp_path_factory.mktemp("web-group")
    ports = port_pairs(len(IDS) * 2)
    grpc_ports, web_ports = ports[:len(IDS)], ports[len(IDS):]
    members = "\n".join(f'"{cid}" = "127.0.0.1:{p}"' for cid, p in zip(IDS, grpc_ports,
                                                                          strict=True))
    urls = "\n".join(f'"{cid}" = "https://127.0.0.1:{p}"' for cid, p in zip(IDS, web_ports,
                                                                              strict=True))
    c = Cluster(tmp)
    out: dict[str, Member] = {}
    for cid, web_port in zip(IDS, web_ports, strict=True):
        state = tmp / cid
        state.mkdir()
        path = tmp / f"{cid}.toml"
        path.write_text(IO7_TOML.format(cid=cid, tls=charger_dir(cid), crl=site_pki().crl,
                                        members=members, state=state)
                        + WEB_TOML.format(port=web_port, urls=urls))
        out[cid] = Member(cid, c.spawn(cid, "-m", "master.io7d", "--config", str(path)))
    ca = ssl.create_default_context(cafile=str(charger_dir(IDS[0]) / "ca.pem"))
    ca.check_hostname = False  # the chain is verified; the name is the site's, not 127.0.0.1
    try:
        for m in out.values():
            m.url, m.password_file = ui_of(m.proc, GENEROUS_S)
        with httpx.Client(verify=ca, timeout=10.0) as client:
            yield Group(out, client, ca)
    finally:
        c.close()


def test_io7d_prints_its_ui_url_and_a_private_password_file(group: Group) -> None:
    for cid, m in group.members.items():
        assert m.url.startswith("https://127.0.0.1:")
        assert m.password_file is not None and m.password_file.parent.name == cid
        assert stat.S_IMODE(os.stat(m.password_file).st_mode) == 0o600
        password = m.password_file.read_text().strip()
        assert password not in (m.password_file.parent / "web-users.json").read_text()
    passwords = {m.password_file.read_text() for m in group.members.values()
                 if m.password_file is not None}
    assert len(passwords) == len(IDS)  # per device, never a shared default


def test_openapi_is_served_without_login_and_validates(group: Group) -> None:
    r = group.client.get(f"{group.members[IDS[0]].url}/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    validate(doc)
    assert {"/api/login", "/api/group", "/api/group/limit", "/api/group/rebuild",
            "/api/election"} <= set(doc["paths"])


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/group"), ("PUT", "/api/group/limit"), ("POST", "/api/group/rebuild"),
    ("GET", "/api/election"), ("GET", "/api/security-log"), ("GET", "/api/me"),
])
def test_every_route_refuses_without_login(group: Group, method: str, path: str) -> None:
    r = group.call(method, IDS[0], path, user=None, json={})
    assert r.status_code == 401, r.text
    r = group.client.request(method, f"{group.members[IDS[0]].url}{path}", json={},
                             headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401


def test_a_wrong_password_is_refused_and_logged(group: Group) -> None:
    m = group.members[IDS[1]]
    r = group.client.post(f"{m.url}/api/login", json={"user": "installer",
                                                      "password": "not-the-password"})
    assert r.status_code == 401 and "wrong user or password" in r.json()["detail"]
    log = group.call("GET", IDS[1], "/api/security-log").json()
    refused = [e for e in log if e["kind"] == "web_login_refused"]
    assert refused and refused[-1]["who"] == "web:installer"
    assert refused[-1]["peer"].startswith("127.0.0.1:") and "wrong password" in \
        refused[-1]["detail"]
    assert any(e["kind"] == "web_login" for e in log)


def test_cookie_session_from_login(group: Group) -> None:
    m = group.members[IDS[2]]
    assert m.password_file is not None
    with httpx.Client(verify=group.ca, timeout=10.0) as browser:
        r = browser.post(f"{m.url}/api/login", json={
            "user": "installer", "password": m.password_file.read_text().strip()})
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
        assert browser.get(f"{m.url}/api/me").json() == {
            "user": "installer", "role": "installer", "charger_id": IDS[2]}
        assert browser.post(f"{m.url}/api/logout").status_code == 200
        assert browser.get(f"{m.url}/api/me").status_code == 401


def test_the_leader_serves_the_group_with_reasons_in_words(group: Group) -> None:
    leader = group.leader()
    status = group.call("GET", leader, "/api/group").json()
    assert status["master_id"] == leader and status["group"] == "garage"
    assert {m["charger_id"] for m in status["members"]} == set(IDS)
    connectors = [c for m in status["members"] for c in m["connectors"]]
    assert connectors and all(c["reason_words"] for c in connectors)
    assert all("limited_by" in p for p in status["phases"])
    election = group.call("GET", leader, "/api/election").json()
    assert election["leading"] and election["leader_url"] == group.members[leader].url


def test_a_member_that_does_not_lead_answers_409_with_the_leaders_url(group: Group) -> None:
    leader = group.leader()
    other = next(cid for cid in IDS if cid != leader)
    for method, path, body in (("GET", "/api/group", None),
                               ("PUT", "/api/group/limit", {"limit_a": 40}),
                               ("POST", "/api/group/rebuild", {"removed": []})):
        r = group.call(method, other, path, json=body)
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail["leader"] == leader and detail["url"] == group.members[leader].url
        assert f"the group pages are on {leader}" in detail["problem"]


def test_group_limit_set_refused_above_installed_and_logged_with_who(group: Group) -> None:
    leader = group.leader()
    r = group.call("PUT", leader, "/api/group/limit", json={"limit_a": INSTALLED_A + 1})
    assert r.status_code == 400
    assert "outside the allowed range [6.0, 48.0] A" in r.json()["detail"]
    r = group.call("PUT", leader, "/api/group/limit", json={"limit_a": 40})
    assert r.status_code == 200, r.text
    assert r.json() == {"limit_a": 40.0, "previous_limit_a": INSTALLED_A,
                        "installed_limit_a": INSTALLED_A}
    wait_for(lambda: all(p["limit_a"] == 40.0 for p in
                         group.call("GET", leader, "/api/group").json()["phases"]),
             "the status shows 40 A")
    log = group.call("GET", leader, "/api/group/security-log").json()
    assert [e for e in log if e["kind"] == "limit_refused" and e["who"] == "web:installer"]
    assert [e for e in log if e["kind"] == "limit_set" and e["who"] == "web:installer"
            and "48 A -> 40 A" in e["detail"]]
    r = group.call("PUT", leader, "/api/group/limit", json={"limit_a": INSTALLED_A})
    assert r.status_code == 200
    assert group.call("PUT", leader, "/api/group/limit",
                      json={"limit_a": "lots"}).status_code == 422  # not a number


def test_rebuild_forgets_only_named_unconnected_members(group: Group) -> None:
    leader = group.leader()
    r = group.call("POST", leader, "/api/group/rebuild", json={"removed": []})
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == [] and set(r.json()["kept"]) == set(IDS)
    connected = next(cid for cid in IDS if cid != leader)
    r = group.call("POST", leader, "/api/group/rebuild", json={"removed": [connected]})
    assert r.status_code == 200 and r.json()["refused_connected"] == [connected]
    r = group.call("POST", leader, "/api/group/rebuild", json={"removed": ["io7-99"]})
    assert r.status_code == 400 and "io7-99" in r.json()["detail"]


def test_a_viewer_reads_but_may_not_change(group: Group) -> None:
    leader = group.leader()
    r = group.call("PUT", leader, "/api/password",
                   json={"user": "viewer", "password": "viewer password 1"})
    assert r.status_code == 200, r.text
    group.login(leader, "viewer", "viewer password 1")
    assert group.call("GET", leader, "/api/group", user="viewer").status_code == 200
    for method, path, body in (("PUT", "/api/group/limit", {"limit_a": 40}),
                               ("POST", "/api/group/rebuild", {"removed": []})):
        r = group.call(method, leader, path, user="viewer", json=body)
        assert r.status_code == 403 and "log in as installer" in r.json()["detail"]
    r = group.call("PUT", leader, "/api/password", user="viewer",
                   json={"user": "installer", "password": "taken over 123"})
    assert r.status_code == 403
    r = group.call("PUT", leader, "/api/password", json={"user": "viewer", "password": "x"})
    assert r.status_code == 400 and "10 to 256 characters" in r.json()["detail"]
    log = group.call("GET", leader, "/api/security-log").json()
    assert [e for e in log if e["kind"] == "web_password_set" and e["who"] == "web:installer"]


def test_an_energy_manager_sets_a_site_limit_over_rest_that_expires(group: Group) -> None:
    """Issue 12 §4's REST source: PUT /api/group/site-limit lowers the phases it names
    while valid, is refused above the installed limit (nothing changes), and ends."""
    leader = group.leader()
    path = "/api/group/site-limit"
    r = group.call("PUT", leader, path, json={"limit_a": INSTALLED_A + 1, "valid_s": 60})
    assert r.status_code == 400 and f"[0, {INSTALLED_A}] A" in r.json()["detail"]
    assert group.call("PUT", leader, path, json={"limit_a": 20}).status_code == 400
    r = group.call("PUT", leader, path, json={"limit_a": [20, 30, INSTALLED_A], "valid_s": 3})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "energy manager (REST)" and r.json()["limit_a"] == [
        20.0, 30.0, INSTALLED_A]

    def limits() -> list[float]:
        return [p["limit_a"] for p in group.call("GET", leader, "/api/group").json()["phases"]]

    wait_for(lambda: limits() == [20.0, 30.0, INSTALLED_A], "the setpoint applies")
    status = group.call("GET", leader, "/api/group").json()
    assert status["phases"][0]["limit_source"].startswith("energy manager (REST) until")
    wait_for(lambda: limits() == [INSTALLED_A] * 3, "back to the installed limit at its end",
             timeout_s=15.0)
    other = next(cid for cid in IDS if cid != leader)
    assert group.call("PUT", other, path, json={"limit_a": 20, "valid_s": 5}).status_code == 409
    assert group.call("PUT", leader, path, user="viewer",
                      json={"limit_a": 20, "valid_s": 5}).status_code == 403
    log = group.call("GET", leader, "/api/group/security-log").json()
    assert [e for e in log if e["kind"] == "external_limit" and "REST" in e["detail"]]
