"""The web UI in a real browser (issue 14 §5): headless Chromium driven by Selenium against
a make-run-style car park: three real io7d processes (agent + master candidate each) on
loopback, every link mutual TLS with a throwaway site CA, the Sense CT kit simulator
(Modbus TCP) on io7-01, the preferred master; each io7d serves its UI over HTTPS with its
charger certificate.

The browser trusts exactly the three chargers' certificates of that throwaway site
(`--ignore-certificate-errors-spki-list` with their public keys' SHA-256), not every
certificate: headless Chromium reads no CA file, and the site CA lives only for this
module.

One car park for the whole module (the suite is near its time budget); the tests run in
file order on it: a wrong password refused and logged, the live page updating without a
reload, the Charger Current Limit followed by the offer, an out-of-range limit refused
with the loader's message, the group rebuilt, the local RFID list edited (add, import a
CSV file, remove), the Passwords page (the viewer's password set, a viewer's session,
a session ended elsewhere back at the login form), a member that does not lead
pointing at the leader, and the
screenshot of the live group page (docs/live-group-page.png, written when missing or with
IO7_UPDATE_SCREENSHOT=1; always to the test's folder).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from agent.errors import ConfigError as AgentConfigError
from master.carpark import port_pairs
from master.errors import ConfigError
from master.io7dconfig import load_io7_config
from tests.e2e.harness import Cluster, Proc, charger_dir, cluster, free_port, site_pki
from tests.web.support import (
    ALL_PHASES,
    QUICK_TUNING,
    SIM_PLUGGED,
    io7_toml,
    spawn_io7d,
    wait_printed,
)

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
                       "(Debian chromium, chromium-driver: make sysdeps)"),
]

IDS = ("io7-01", "io7-02", "io7-03")
LEADER = "io7-01"  # holds the CT kit: the preferred master (io7d rule 4)
SLOW_S = 60.0  # a shared machine with a browser and three daemons: a bound, not a measure
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "live-group-page.png"
NEW_LIMIT_A = 8.0  # below the fair share (50 A - 8 A other load) / 3 = 14 A

GROUP = f"""mode = "dynamic"
limit_a = 50
fallback_limit_a = 24
ct_placement = "other_loads"
margin_a = 0
offline_strategy = "maximise"
ct_charger = "{LEADER}"
"""
TUNING = QUICK_TUNING + "\nmin_pause_s = 0.0\ndemand_cap_after_s = 3600.0"

CT = """
[ct]
enabled = true
rated_a = 100
timeout_s = 0.5
retries = 1
[ct.clamps]
1 = "L1"
2 = "L2"
3 = "L3"
[ct.tcp]
host = "127.0.0.1"
port = {port}
"""


@dataclass
class Charger:
    cid: str
    url: str
    password: str
    state: Path
    toml: Path
    proc: Proc


@dataclass
class Park:
    chargers: dict[str, Charger]
    tmp: Path
    client: httpx.Client

    def token(self, cid: str) -> str:
        c = self.chargers[cid]
        r = self.client.post(f"{c.url}/api/login", json={"user": "installer",
                                                         "password": c.password})
        r.raise_for_status()
        return str(r.json()["token"])

    def get(self, cid: str, path: str, token: str) -> Any:
        r = self.client.get(f"{self.chargers[cid].url}{path}",
                            headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        return r.json()


def wait(what: str, check: Callable[[], bool], timeout_s: float = SLOW_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.2)


def https_client() -> httpx.Client:
    """Trusts the throwaway site CA (no host name check: the chargers' certificates name
    the charger, not 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=str(charger_dir(LEADER) / "ca.pem"))
    ctx.check_hostname = False
    return httpx.Client(verify=ctx, timeout=10.0)


@pytest.fixture(scope="module")
def park(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Park]:
    tmp = tmp_path_factory.mktemp("park")
    with cluster(tmp) as c:
        yield start(c, tmp)


def start(c: Cluster, tmp: Path) -> Park:
    ct_port = free_port()
    c.ct_sim(ct_port, base_a=8.0)  # the building's other loads: 8 A on every phase
    ports = port_pairs(len(IDS), set())
    members = "\n".join(f'"{cid}" = "127.0.0.1:{p}"' for cid, p in zip(IDS, ports, strict=True))
    web_ports = {cid: free_port() for cid in IDS}
    urls = {cid: f"https://127.0.0.1:{p}" for cid, p in web_ports.items()}
    url_table = "\n".join(f'"{cid}" = "{u}"' for cid, u in urls.items())
    chargers = {}
    for cid in IDS:
        state = tmp / f"state-{cid}"
        state.mkdir()
        toml = tmp / f"{cid}.toml"
        web = f'[web]\nlisten = "127.0.0.1:{web_ports[cid]}"\n[web.members]\n{url_table}\n'
        proc = spawn_io7d(c, cid, toml, io7_toml(
            state=state, cid=cid, members=members, wiring=(ALL_PHASES,),
            tls=f'dir = "{charger_dir(cid)}"\ncrl = "{site_pki().crl}"',
            master="cycle_ms = 500\nlease_cycles = 4", group=GROUP, tuning=TUNING,
            more=web + SIM_PLUGGED) + (CT.format(port=ct_port) if cid == LEADER else ""))
        chargers[cid] = Charger(cid, urls[cid], "", state, toml, proc)
    for ch in chargers.values():
        assert wait_printed(ch.proc, "web", SLOW_S) == ch.url
        ch.password = Path(wait_printed(ch.proc, "web_password_file", SLOW_S)).read_text().strip()
    p = Park(chargers, tmp, https_client())
    token = p.token(LEADER)
    wait(f"{LEADER} leads with every member online", lambda: (
        (e := p.get(LEADER, "/api/election", token))["leading"]
        and all(e["members"].values())))
    wait("every connector charges", lambda: all(
        c["offered_a"] > 0 for m in p.get(LEADER, "/api/group", token)["members"]
        for c in m["connectors"]) and len(p.get(LEADER, "/api/group", token)["members"]) == 3)
    return p


def spki_sha256(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def driver(park: Park) -> Iterator[WebDriver]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    pins = ",".join(spki_sha256(charger_dir(cid) / "cert.pem") for cid in IDS)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1500", f"--user-data-dir={park.tmp / 'chromium'}",
                f"--ignore-certificate-errors-spki-list={pins}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        d = webdriver.Chrome(options=opts, service=Service(str(CHROMEDRIVER)))
    except WebDriverException as exc:
        pytest.skip(f"chromium does not start here: {exc.msg}")
    try:
        yield d
    finally:
        d.quit()


def until(d: WebDriver, what: str, check: Callable[[WebDriver], Any],
          timeout_s: float = SLOW_S) -> Any:
    """check(d) once truthy; on a timeout the page's screenshot, HTML and console are
    saved next to the car park's logs and the console is in the message. A stale element
    is asked again: the live page replaces its rows at every event."""
    try:
        return WebDriverWait(d, timeout_s, poll_frequency=0.2,
                             ignored_exceptions=[StaleElementReferenceException]
                             ).until(check, message=what)
    except TimeoutException:
        folder = Path(tempfile.gettempdir()) / "io7-browser-test"
        folder.mkdir(exist_ok=True)
        d.save_screenshot(str(folder / "failed.png"))
        (folder / "failed.html").write_text(d.page_source)
        logs = d.get_log("browser") if isinstance(d, webdriver.Chrome) else []  # type: ignore[no-untyped-call]
        console = "\n".join(str(e.get("message")) for e in logs)
        raise AssertionError(f"not within {timeout_s} s: {what} (at {d.current_url}; page "
                             f"in {folder}/failed.*; console: {console[-2000:]})") from None


def text(d: WebDriver, css: str) -> str:
    found = d.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def log_in(d: WebDriver, c: Charger, password: str | None = None,
           user: str = "installer") -> None:
    d.get(f"{c.url}/#/login")
    until(d, "the login form", lambda d: d.find_elements(By.ID, "login-password"))
    Select(d.find_element(By.ID, "login-user")).select_by_value(user)
    field = d.find_element(By.ID, "login-password")
    field.clear()
    field.send_keys(password or c.password)
    d.find_element(By.ID, "login-submit").click()


def offer(d: WebDriver, key: str) -> float | None:
    cells = d.find_elements(By.CSS_SELECTOR, f'tr[data-connector="{key}"] td.offer')
    return float(cells[0].get_attribute("data-value") or "nan") if cells else None


def test_a_wrong_password_is_refused_and_logged(park: Park, driver: WebDriver) -> None:
    leader = park.chargers[LEADER]
    log_in(driver, leader, password="not-the-password")
    until(driver, "the refusal", lambda d: "wrong user or password" in text(d, "#login-error"))
    assert driver.execute_script("return location.hash") == "#/login"
    entries = [json.loads(line) for line in
               (leader.state / "security.jsonl").read_text().splitlines()]
    refused = [e for e in entries if e.get("kind") == "web_login_refused"]
    assert refused and "installer" in refused[-1]["who"], entries[-3:]
    assert "127.0.0.1" in refused[-1]["peer"]


def test_the_live_page_updates_without_a_reload(park: Park, driver: WebDriver) -> None:
    log_in(driver, park.chargers[LEADER])
    until(driver, "the live page", lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                                  "#phases .phase")) == 3)
    until(driver, "every connector", lambda d: all(offer(d, f"{cid}/1") for cid in IDS))
    driver.execute_script("window.io7Marker = 'same page'")
    # through until: the page replaces the element at every event (stale in between)
    first = until(driver, "the cycle number", lambda d: (text(d, "#cycle"),))[0]
    until(driver, "a new cycle on screen", lambda d: text(d, "#cycle") not in ("", first))
    assert driver.execute_script("return window.io7Marker") == "same page"  # no reload

    def row(d: WebDriver) -> tuple[str, str, str]:  # read between two events
        tr = d.find_element(By.CSS_SELECTOR, f'tr[data-connector="{LEADER}/1"]')
        return (tr.find_element(By.CSS_SELECTOR, "td.reason").text,
                tr.find_element(By.CSS_SELECTOR, ".led").get_attribute("title") or "",
                text(d, '.phase[data-phase="L1"] [data-field="ct_a"]'))

    reason, led, ct = until(driver, f"{LEADER}/1's row", row)
    assert reason  # a reason in words
    assert led == "charging"
    assert "A" in ct and "–" not in ct  # the CT kit's reading is shown


def test_the_offer_follows_a_new_charger_current_limit(park: Park, driver: WebDriver) -> None:
    before = offer(driver, f"{LEADER}/1")
    assert before is not None and before > NEW_LIMIT_A
    driver.get(f"{park.chargers[LEADER].url}/#/settings")
    field = until(driver, "the settings form", lambda d: d.find_element(
        By.CSS_SELECTOR, '[data-key="charger.current_limit_a"]'))
    field.clear()
    field.send_keys(f"{NEW_LIMIT_A:g}")
    driver.find_element(By.ID, "settings-save").click()
    until(driver, "saved", lambda d: "Saved and applied" in text(d, "#settings-result"))
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="live"]').click()
    until(driver, f"the offer of {LEADER}/1 at most {NEW_LIMIT_A} A", lambda d: (
        (o := offer(d, f"{LEADER}/1")) is not None and 6.0 <= o <= NEW_LIMIT_A))
    reason = until(driver, "its reason", lambda d: (
        text(d, f'tr[data-connector="{LEADER}/1"] td.reason'),))[0]  # rows are replaced
    assert "Charger Current Limit" in reason, reason


def test_an_out_of_range_limit_is_refused_with_the_loader_s_message(
        park: Park, driver: WebDriver) -> None:
    leader = park.chargers[LEADER]
    copy = park.tmp / "refused" / leader.toml.name
    copy.parent.mkdir(exist_ok=True)
    copy.write_text(re.sub(r"(?m)^current_limit_a = .*$", "current_limit_a = 70",
                           leader.toml.read_text()))
    try:
        load_io7_config(copy)
    except (ConfigError, AgentConfigError) as refused:
        expected = f"{refused.key}: {refused.problem}"
    else:
        raise AssertionError("io7.toml with current_limit_a = 70 loads")
    driver.get(f"{leader.url}/#/settings")
    field = until(driver, "the settings form", lambda d: d.find_element(
        By.CSS_SELECTOR, '[data-key="charger.current_limit_a"]'))
    field.clear()
    field.send_keys("70")
    driver.find_element(By.ID, "settings-save").click()
    until(driver, "the refusal", lambda d: expected in text(d, "#settings-result"))
    assert "error" in (driver.find_element(By.ID, "settings-result")
                       .get_attribute("class") or "")
    assert f"current_limit_a = {NEW_LIMIT_A:g}" in leader.toml.read_text()  # not written


def test_rebuild_the_group(park: Park, driver: WebDriver) -> None:
    driver.get(f"{park.chargers[LEADER].url}/#/balancing")
    until(driver, "the members", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#members tr")) == 3)
    assert text(driver, '#group-facts [data-key="mode"]') == "dynamic"
    driver.find_element(By.ID, "rebuild").click()
    until(driver, "rebuilt", lambda d: "Rebuilt" in text(d, "#rebuild-result"))
    result = text(driver, "#rebuild-result")
    assert "removed none" in result and all(cid in result for cid in IDS), result


def test_the_local_rfid_list_add_import_and_remove(park: Park, driver: WebDriver) -> None:
    driver.get(f"{park.chargers[LEADER].url}/#/authorisation")
    tag = until(driver, "the RFID form", lambda d: d.find_element(By.ID, "rfid-tag"))
    tag.send_keys("04A1B2C3")
    driver.find_element(By.CSS_SELECTOR, "#rfid-add button").click()
    until(driver, "the tag listed", lambda d: d.find_elements(
        By.CSS_SELECTOR, '#rfid-list tr[data-tag="04A1B2C3"]'))
    csv = park.tmp / "tags.csv"
    csv.write_text("id_tag\n04D5E6F7\n04A1B2C3\n")
    driver.find_element(By.ID, "rfid-file").send_keys(str(csv))
    driver.find_element(By.CSS_SELECTOR, "#rfid-import button").click()
    until(driver, "imported", lambda d: "Imported 1 tag(s), skipped 1" in text(d, "#rfid-result"))
    def remove(d: WebDriver) -> bool:  # the list is drawn again after the import: retried
        d.find_element(By.CSS_SELECTOR, '#rfid-list tr[data-tag="04A1B2C3"] button').click()
        return True

    until(driver, "the remove button clicked", remove)
    until(driver, "the tag removed", lambda d: [
        r.get_attribute("data-tag") for r in d.find_elements(By.CSS_SELECTOR, "#rfid-list tr")
    ] == ["04D5E6F7"])
    assert '"04D5E6F7"' in park.chargers[LEADER].toml.read_text()


def set_password(d: WebDriver, form: str, new: str, current: str | None = None) -> None:
    """Fill and send a form of the Passwords page (`form`: own-password, viewer-password)."""
    for field, value in (("current", current), ("password", new), ("repeat", new)):
        if value is not None:
            box = d.find_element(By.ID, f"{form}-{field}")
            box.clear()
            box.send_keys(value)
    d.find_element(By.ID, f"{form}-save").click()


def test_passwords_a_viewer_and_an_ended_session(park: Park, driver: WebDriver) -> None:
    """The installer sets the viewer's password in the page (a short one refused with the
    API's words); the viewer logs in, cannot save settings, sees only its own password
    form and changes it (back to the login form); a session ended elsewhere (the
    installer sets the viewer's password again) sends the live page to the login form
    with a message. The installer's own password is never changed here."""
    leader = park.chargers[LEADER]
    first, second, third = "viewer-first-pw", "viewer-second-pw", "viewer-third-pw"
    log_in(driver, leader)  # then wait for the login's own move to the live page
    until(driver, "logged in", lambda d: d.execute_script("return location.hash") == "#/live")
    driver.get(f"{leader.url}/#/passwords")
    until(driver, "the viewer's password form", lambda d: d.find_elements(
        By.ID, "viewer-password-form"))
    assert driver.find_elements(By.ID, "own-password-current")  # its own needs the current
    set_password(driver, "viewer-password", "short")
    until(driver, "the API's refusal", lambda d: "a password has 10 to 256 characters"
          in text(d, "#viewer-password-result"))
    set_password(driver, "viewer-password", first)
    until(driver, "set", lambda d: "set" in text(d, "#viewer-password-result")
          and "error" not in (d.find_element(By.ID, "viewer-password-result")
                              .get_attribute("class") or ""))
    driver.find_element(By.ID, "logout").click()
    until(driver, "logged out", lambda d: d.find_elements(By.ID, "login-password"))

    log_in(driver, leader, first, user="viewer")
    until(driver, "the viewer logged in", lambda d: "viewer" in text(d, "#who")
          and d.execute_script("return location.hash") == "#/live")
    driver.get(f"{leader.url}/#/settings")
    save = until(driver, "the settings form", lambda d: d.find_element(By.ID, "settings-save"))
    assert not save.is_enabled()
    driver.get(f"{leader.url}/#/passwords")
    until(driver, "the viewer's own form", lambda d: d.find_elements(By.ID, "own-password-form"))
    assert not driver.find_elements(By.ID, "viewer-password-form")
    set_password(driver, "own-password", second, current=first)
    until(driver, "back to the login form", lambda d: "new one" in text(d, "#login-notice"))

    log_in(driver, leader, second, user="viewer")
    until(driver, "the live page", lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                                  "#phases .phase")) == 3)
    r = park.client.put(f"{leader.url}/api/password", json={"user": "viewer",
                        "password": third}, headers={
                            "Authorization": f"Bearer {park.token(LEADER)}"})
    r.raise_for_status()
    until(driver, "the login form, saying why", lambda d: "session ended"
          in text(d, "#login-notice"), timeout_s=30.0)
    assert driver.execute_script("return location.hash") == "#/login"


def test_a_member_that_does_not_lead_points_at_the_leader(park: Park,
                                                          driver: WebDriver) -> None:
    log_in(driver, park.chargers["io7-02"])
    link = until(driver, "the leader's link", lambda d: d.find_element(By.ID, "leader-link"))
    assert (link.get_attribute("href") or "").startswith(park.chargers[LEADER].url)
    assert "io7-01" in text(driver, "#not-leader")


def test_screenshot_of_the_live_group_page(park: Park, driver: WebDriver) -> None:
    token = park.token(LEADER)
    wait("a few history samples", lambda: len(
        park.get(LEADER, "/api/history?points=720", token)["t"]) >= 4, 120.0)
    log_in(driver, park.chargers[LEADER])
    until(driver, "the charts", lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#charts canvas")) >= 2)
    until(driver, "every connector", lambda d: all(offer(d, f"{cid}/1") for cid in IDS))
    for _ in range(3):  # the whole page: grow the window until nothing scrolls
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.set_window_size(1280, height + 160)
        time.sleep(0.5)  # the resize's redraw, one more event
    shot = park.tmp / "live-group-page.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("IO7_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
