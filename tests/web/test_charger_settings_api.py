"""The charger's own REST API (master/web/api_charger.py) through io7d's whole app (httpx's
ASGI transport) on a real Station: a lone charger's io7.toml with OCPP on, its real Agent
(not stepping), real logins. Per endpoint its happy path and its refusal; every change and
refusal in the security log with the web user."""

from __future__ import annotations

import asyncio
import inspect
import stat
import threading
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.ocpp.auth import AuthorizationStatus, IdTagInfo
from agent.ocpp.authlists import AuthorizationData, UpdateType
from agent.ocpp.store import OcppStore
from master.errors import ConfigError
from master.io7dconfig import load_io7_config
from master.web import api_charger
from master.web import chargersettings as cs
from master.web.accounts import Accounts
from master.web.app import build_app
from master.web.station import Station
from master.web.tomlwrite import edited
from tests.web.support import io7_toml, lone_agent

PASSWORDS = {"installer": "installer-pass-for-tests", "viewer": "viewer-pass-for-tests"}
OCPP = """[ocpp]
enabled = true
url = "ws://127.0.0.1:9/ocpp"  # nobody listens: the link is not started here
local_list = ["04A1B2C3"]
"""

@dataclass
class Bench:
    path: Path
    station: Station
    client: httpx.AsyncClient
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def log(self, kind: str) -> list[str]:
        return [f"{e.who} {e.detail}" for e in self.station.security.tail(50) if e.kind == kind]


@asynccontextmanager
async def bench(tmp: Path) -> AsyncIterator[Bench]:
    text = io7_toml(state=tmp / "state", head="# the test bench (comments must survive every "
                    "edit)\n", limit_note="  # manual 6.3", more=OCPP)
    with lone_agent(tmp, text) as (config, agent):
        try:
            accounts, _ = Accounts.open(tmp)
            for who, password in PASSWORDS.items():
                accounts.set_password(who, password)
            station = Station(config, agent, accounts=accounts, web_urls={})
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(station)),
                                         base_url="http://io7") as client:
                tokens = {}
                for who, password in PASSWORDS.items():
                    r = await client.post("/api/login",
                                          json={"user": who, "password": password})
                    assert r.status_code == 200, r.text
                    tokens[who] = r.json()["token"]
                client.cookies.clear()  # each request says who it is (or nobody)
                yield Bench(tmp / "io7.toml", station, client, tokens)
        finally:
            assert agent.sessions is not None and agent.ocpp_db is not None
            agent.sessions.store.close()
            agent.sessions.profile_store.close()
            agent.ocpp_db.close()


def run(tmp: Path, body: Callable[[Bench], Awaitable[None]]) -> None:
    async def main() -> None:
        async with bench(tmp) as b:
            await body(b)
    asyncio.run(main())


def loader_says(tmp: Path, text: str) -> str:
    other = tmp / "other" / "io7.toml"
    other.parent.mkdir(exist_ok=True)
    other.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_io7_config(other)
    return str(err.value).replace(str(other), str(tmp / "io7.toml"))


def test_general_information(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        assert (await b.client.get("/api/charger")).status_code == 401
        r = await b.client.get("/api/charger", headers=b.auth("viewer"))
        assert r.status_code == 200, r.text
        info = r.json()
        assert (info["make"], info["model"], info["charger_id"]) == ("Ratio", "io7 Double",
                                                                     "io7-01")
        assert info["connectors"] == [1, 2] and info["charger_current_limit_a"] == 32.0
        assert info["member_address"] == "127.0.0.1:40001"
        assert info["versions"]["software"].startswith("io7-cluster")
        assert info["uptime_s"] >= 0.0
    run(tmp_path, body)


def test_settings_are_listed_by_key_with_their_page_and_the_key_masked(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        assert (await b.client.get("/api/charger/settings")).status_code == 401
        r = await b.client.get("/api/charger/settings", headers=b.auth("viewer"))
        assert r.status_code == 200, r.text
        by_key = {s["key"]: s for s in r.json()["settings"]}
        limit = by_key["charger.current_limit_a"]
        assert (limit["value"], limit["min"], limit["max"], limit["live"]) == (32.0, 6, 63, True)
        assert by_key["ocpp.uk_default.max_random_delay_s"]["page"] == "smart_charging"
        assert by_key["ocpp.authorization_key"]["value"] is None
        assert "ocpp.local_list" not in by_key  # the RFID endpoints edit it
        assert by_key["ocpp.url"]["restart_why"].startswith("read at start")
        assert r.json()["pending_restart"] == {}
    run(tmp_path, body)


def test_the_charger_limit_is_written_and_applied_at_once(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        change = {"changes": {"charger.current_limit_a": 10}}
        r = await b.client.put("/api/charger/settings", json=change, headers=b.auth("viewer"))
        assert r.status_code == 403
        r = await b.client.put("/api/charger/settings", json=change,
                               headers=b.auth("installer"))
        assert r.status_code == 200, r.text
        assert r.json() == {"applied": ["charger.current_limit_a"], "restart_needed": False,
                            "restart": {}, "unchanged": [], "notes": []}
        text = b.path.read_text()
        assert "current_limit_a = 10  # manual 6.3" in text and text.startswith("# the test")
        assert b.station.agent.applier.charger_limit_a == 10.0
        assert b.station.agent.hello().charger_current_limit_a == 10.0
        assert b.station.config.agent.charger_limit_a == 10.0
        assert b.log("settings_changed") == [
            "web:installer io7.toml: charger.current_limit_a 32.0 -> 10.0 (now)"]
    run(tmp_path, body)


def test_a_bad_value_is_refused_with_the_loaders_message_and_nothing_written(
        tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        before = b.path.read_bytes()
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"),
                               json={"changes": {"charger.current_limit_a": 64}})
        assert r.status_code == 400
        said = loader_says(tmp_path, edited(before.decode(), {"charger.current_limit_a": 64}))
        assert r.json()["detail"] == said
        assert "charger.current_limit_a: 64 is outside the allowed range [6, 63]" in said
        assert b.path.read_bytes() == before
        assert b.station.agent.applier.charger_limit_a == 32.0
        assert b.log("settings_refused") == [f"web:installer charger.current_limit_a: {said}"]
    run(tmp_path, body)


def test_smart_charging_and_csms_changes_wait_for_a_restart(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"), json={
            "changes": {"ocpp.uk_default.enabled": True,
                        "ocpp.uk_default.no_charging_periods": [["07:00", "10:00"]],
                        "ocpp.uk_default.max_random_delay_s": 1800,
                        "ocpp.url": "ws://127.0.0.1:9/other"}})
        assert r.status_code == 200, r.text
        assert r.json()["restart_needed"] is True and r.json()["applied"] == []
        assert set(r.json()["restart"]) == {"ocpp.uk_default.enabled", "ocpp.url",
                                            "ocpp.uk_default.no_charging_periods",
                                            "ocpp.uk_default.max_random_delay_s"}
        uk = tomllib.loads(b.path.read_text())["ocpp"]["uk_default"]
        assert uk == {"enabled": True, "no_charging_periods": [["07:00", "10:00"]],
                      "max_random_delay_s": 1800}
        view = (await b.client.get("/api/charger/settings", headers=b.auth("viewer"))).json()
        assert "ocpp.url" in view["pending_restart"]
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"),
                               json={"changes": {"ocpp.uk_default.max_random_delay_s": 1801}})
        assert r.status_code == 400
        assert r.json()["detail"].endswith("ocpp.uk_default.max_random_delay_s: must be a "
                                           "whole number of s in 0-1800, got 1801")
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"),
                               json={"changes": {"group.limit_a": 10}})
        assert r.status_code == 400 and "not a setting" in r.json()["detail"]
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"),
                               json={"changes": {"ocpp.local_list": []}})
        assert r.status_code == 400 and "/api/charger/rfid" in r.json()["detail"]
    run(tmp_path, body)


def test_csms_connection(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        assert (await b.client.get("/api/charger/csms")).status_code == 401
        r = await b.client.get("/api/charger/csms", headers=b.auth("viewer"))
        assert r.json() == {"enabled": True, "url": "ws://127.0.0.1:9/ocpp",
                            "charge_point_id": "io7-01", "security_profile": 0,
                            "connection_state": "stopped"}
    run(tmp_path, body)


def test_the_rfid_list_add_remove_and_refusals(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        r = await b.client.get("/api/charger/rfid", headers=b.auth("viewer"))
        assert r.json()["tags"] == ["04A1B2C3"] and r.json()["owner"] == "config"
        assert r.json()["in_force"] == ["04A1B2C3"]
        add = {"id_tag": "04D5E6F7"}
        assert (await b.client.post("/api/charger/rfid", json=add,
                                    headers=b.auth("viewer"))).status_code == 403
        r = await b.client.post("/api/charger/rfid", json=add, headers=b.auth("installer"))
        assert r.status_code == 200, r.text
        assert r.json()["tags"] == ["04A1B2C3", "04D5E6F7"]
        assert r.json()["in_force"] == ["04A1B2C3", "04D5E6F7"]  # the agent's store, now
        text = b.path.read_text()
        assert 'local_list = ["04A1B2C3", "04D5E6F7"]' in text and "# nobody listens" in text
        again = await b.client.post("/api/charger/rfid", json={"id_tag": "04d5e6f7"},
                                    headers=b.auth("installer"))
        assert again.status_code == 409
        long = await b.client.post("/api/charger/rfid", json={"id_tag": "X" * 21},
                                   headers=b.auth("installer"))
        assert long.status_code == 400
        assert long.json()["detail"] == loader_says(
            tmp_path, edited(text, {"ocpp.local_list": ["04A1B2C3", "04D5E6F7", "X" * 21]}))
        r = await b.client.delete("/api/charger/rfid/04a1b2c3", headers=b.auth("installer"))
        assert r.status_code == 200 and r.json()["in_force"] == ["04D5E6F7"]
        gone = await b.client.delete("/api/charger/rfid/04A1B2C3", headers=b.auth("installer"))
        assert gone.status_code == 404
        assert b.log("rfid_added") == [
            "web:installer idTag '04D5E6F7' added to the local RFID list"]
        assert len(b.log("rfid_removed")) == 1
    run(tmp_path, body)


def test_csv_import_merges_skips_and_names_a_bad_line(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        csv = "id_tag,name\n# the night shift\n04A1B2C3,Ann\n\n04BBBBBB,Bob\n"
        url = "/api/charger/rfid/import"
        headers = {**b.auth("installer"), "Content-Type": "text/csv"}
        r = await b.client.post(url, content=csv, headers=headers)
        assert r.status_code == 200, r.text
        assert (r.json()["added"], r.json()["skipped"]) == (1, 1)
        assert r.json()["tags"] == ["04A1B2C3", "04BBBBBB"]
        bad = await b.client.post(url, content="04CCCCCC\n" + "Y" * 21 + "\n", headers=headers)
        assert bad.status_code == 400
        assert bad.json()["detail"].startswith("CSV line 2: ")
        assert "ocpp.local_list: idTag must be 1-20 characters" in bad.json()["detail"]
        r = await b.client.post(url + "?replace=true", content="04DDDDDD\n", headers=headers)
        assert r.json()["tags"] == ["04DDDDDD"] == r.json()["in_force"]
        as_json = await b.client.post(url, json={"csv": "04EEEEEE\n"},  # the UI's form
                                      headers=b.auth("installer"))
        assert as_json.status_code == 200 and as_json.json()["added"] == 1
        viewer = await b.client.post(url, content="04EEEEEE\n",
                                     headers={**b.auth("viewer"), "Content-Type": "text/csv"})
        assert viewer.status_code == 403
        assert len(b.log("rfid_imported")) == 3
    run(tmp_path, body)


def test_a_list_the_csms_owns_is_not_edited_here(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        sessions = b.station.agent.sessions
        assert sessions is not None
        sessions.store.send_local_list(3, UpdateType.FULL, [AuthorizationData(
            id_tag="CSMS0001", id_tag_info=IdTagInfo(status=AuthorizationStatus.ACCEPTED))])
        before = b.path.read_bytes()
        r = await b.client.post("/api/charger/rfid", json={"id_tag": "04D5E6F7"},
                                headers=b.auth("installer"))
        assert r.status_code == 409 and "SendLocalList" in r.json()["detail"]
        assert b.path.read_bytes() == before
        view = (await b.client.get("/api/charger/rfid", headers=b.auth("viewer"))).json()
        assert view["owner"] == "csms" and view["in_force"] == ["CSMS0001"]
    run(tmp_path, body)


def test_the_openapi_document_has_every_route(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        doc = (await b.client.get("/openapi.json")).json()
        paths = doc["paths"]
        assert {"get", "put"} <= set(paths["/api/charger/settings"])
        assert {"get", "post"} <= set(paths["/api/charger/rfid"])
        assert "delete" in paths["/api/charger/rfid/{id_tag}"]
        assert "text/csv" in paths["/api/charger/rfid/import"]["post"]["requestBody"]["content"]
        assert "get" in paths["/api/charger"] and "get" in paths["/api/charger/csms"]
    run(tmp_path, body)


def test_a_csv_import_is_linear_and_checked_off_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 2: the merge compared every row with every tag (`_same`, O(n^2)) and
    the loader's checks (tomlkit and tomllib, three parses) ran on io7d's loop: 4 000 tags
    blocked it ~4.6 s (the lease watchdog and Raft ticks with it). Counted, not timed."""
    same_calls = 0
    real_same = api_charger._same

    def counted_same(a: str, b: str) -> bool:
        nonlocal same_calls
        same_calls += 1
        return real_same(a, b)

    threads: list[int] = []
    real_plan = cs.plan_change

    def plan_where(*args: Any, **kw: Any) -> cs.Plan:
        threads.append(threading.get_ident())
        return real_plan(*args, **kw)

    monkeypatch.setattr(api_charger, "_same", counted_same)
    monkeypatch.setattr(cs, "plan_change", plan_where)

    async def body(b: Bench) -> None:
        rows = [f"04{n:06X}" for n in range(api_charger.LOCAL_LIST_MAX - 1)]
        csv = "\n".join(["04a1b2c3", *rows]) + "\n"  # the listed tag, in another case
        r = await b.client.post("/api/charger/rfid/import", content=csv, headers={
            **b.auth("installer"), "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        assert (r.json()["added"], r.json()["skipped"]) == (len(rows), 1)
        assert len(r.json()["in_force"]) == api_charger.LOCAL_LIST_MAX
        assert threads and threading.get_ident() not in threads
    run(tmp_path, body)
    assert same_calls <= 2 * api_charger.LOCAL_LIST_MAX


def test_an_import_above_the_local_lists_size_is_refused_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review finding 2: 256 KiB of CSV is ~20 000 tags; the list holds LOCAL_LIST_MAX
    (OcppStore's LocalAuthListMaxLength). Refused before the merge and the loader's
    checks (with OCPP off nothing else refused it: io7.toml took 20 000 tags)."""
    planned: list[object] = []
    monkeypatch.setattr(cs, "plan_change", lambda *a, **k: planned.append(a))
    store_max = inspect.signature(OcppStore).parameters["local_list_max_length"].default
    assert store_max == api_charger.LOCAL_LIST_MAX

    async def body(b: Bench) -> None:
        before = b.path.read_bytes()
        csv = "".join(f"04{n:06X}\n" for n in range(api_charger.LOCAL_LIST_MAX + 1))
        r = await b.client.post("/api/charger/rfid/import", content=csv, headers={
            **b.auth("installer"), "Content-Type": "text/csv"})
        assert r.status_code == 400
        assert r.json()["detail"] == (
            f"the CSV has {api_charger.LOCAL_LIST_MAX + 1} idTags; the local list holds at "
            f"most {api_charger.LOCAL_LIST_MAX}: split the file or remove some")
        one_more = "".join(f"04{n:06X}\n" for n in range(api_charger.LOCAL_LIST_MAX))
        r = await b.client.post("/api/charger/rfid/import", content=one_more, headers={
            **b.auth("installer"), "Content-Type": "text/csv"})  # + the one listed
        assert r.status_code == 400 and "holds at most" in r.json()["detail"]
        assert b.path.read_bytes() == before and planned == []
        assert b.station.agent.sessions is not None
        assert [e.id_tag for e in b.station.agent.sessions.store.local_list()] == ["04A1B2C3"]
    run(tmp_path, body)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])
def test_an_import_that_a_cross_site_form_could_send_is_refused(
        tmp_path: Path, ctype: str | None) -> None:
    """Review finding 5 (CSRF): the body was read whatever its type, so a cross-site
    text/plain form (no preflight) could replace the list. Only text/csv or JSON."""
    async def body(b: Bench) -> None:
        before = b.path.read_bytes()
        headers = b.auth("installer") | ({} if ctype is None else {"Content-Type": ctype})
        r = await b.client.post("/api/charger/rfid/import?replace=true", content="04FFFFFF\n",
                                headers=headers)
        assert r.status_code == 415 and "text/csv" in r.json()["detail"]
        assert b.path.read_bytes() == before
        r = await b.client.post("/api/charger/rfid/import", content="04FFFFFF\n", headers={
            **b.auth("installer"), "Content-Type": "text/csv; charset=utf-8"})
        assert r.status_code == 200, r.text
    run(tmp_path, body)


def test_a_declared_length_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    async def body(b: Bench) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"04FFFFFF\n" * (api_charger.CSV_MAX_BYTES // 9 + 1)

        r = await b.client.post("/api/charger/rfid/import", content=chunks(), headers={
            **b.auth("installer"), "Content-Type": "text/csv"})  # no Content-Length
        assert r.status_code == 413
        r = await b.client.post("/api/charger/rfid/import", content=b"04FFFFFF\n", headers={
            **b.auth("installer"), "Content-Type": "text/csv",
            "Content-Length": str(api_charger.CSV_MAX_BYTES + 1)})
        assert r.status_code == 413
    run(tmp_path, body)


def test_a_file_holding_the_authorization_key_becomes_owner_only(tmp_path: Path) -> None:
    """Review finding 10: io7.toml written with the OCPP AuthorizationKey kept whatever
    mode it had (0644: any local user could read the key). It is now written 0600 when it
    holds one, and the answer says so."""
    async def body(b: Bench) -> None:
        b.path.chmod(0o644)
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"), json={
            "changes": {"ocpp.security_profile": 1,
                        "ocpp.authorization_key": "9f3c1a7e52d84b06e1a9c3f7"}})
        assert r.status_code == 200, r.text
        assert stat.S_IMODE(b.path.stat().st_mode) == 0o600
        assert any("0600" in note and "AuthorizationKey" in note
                   for note in r.json()["notes"]), r.json()
        assert "9f3c1a7e52d84b06e1a9c3f7" not in r.text
        r = await b.client.put("/api/charger/settings", headers=b.auth("installer"),
                               json={"changes": {"charger.current_limit_a": 20}})
        assert stat.S_IMODE(b.path.stat().st_mode) == 0o600 and r.json()["notes"] == []
    run(tmp_path, body)
