"""The agent config's [ocpp] table and --csms-url: a valid table loads; every bad value
names the file, the key and what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.config import load_agent_config, with_csms_url
from agent.errors import ConfigError
from agent.ocpp.auth import AuthMode
from agent.ocpp.settings import OcppSettings
from agent.ocpp.ukdefault import NoChargingPeriod, UkDefaultSettings

BASE = """
[charger]
id = "io7-garage-01"
current_limit_a = 32
[connectors.1]
wiring = ["L1", "L2", "L3"]
"""
KEY = "v7Qe-2mRk9xLp4Wz"  # 16 random characters


def load(tmp: Path, ocpp: str) -> OcppSettings | None:
    path = tmp / "agent.toml"
    path.write_text(BASE + ocpp)
    return load_agent_config(path).ocpp


def test_absent_or_disabled_means_no_back_office(tmp_path: Path) -> None:
    assert load(tmp_path, "") is None
    assert load(tmp_path, '[ocpp]\nenabled = false\nurl = "not even a url"\n') is None


def test_a_full_table_loads(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    got = load(tmp_path, f"""[ocpp]
enabled = true
url = "wss://csms.example.com:8443/ocpp"
charge_point_id = "CP-0042"
security_profile = 2
authorization_key = "{KEY}"
ca_file = "ca.pem"
serial_number = "IO7-000123"
auth_mode = "local_list"
free_id_tag = "PLUG"
local_list = ["04A1B2C3", "CAFE"]
[ocpp.uk_default]
enabled = true
no_charging_periods = [["07:30", "10:00"]]
max_random_delay_s = 900
""")
    assert got == OcppSettings(url="wss://csms.example.com:8443/ocpp", charge_point_id="CP-0042",
                               security_profile=2, authorization_key=KEY,
                               ca_file=tmp_path / "ca.pem", serial_number="IO7-000123",
                               auth_mode=AuthMode.LOCAL_LIST, free_id_tag="PLUG",
                               local_list=("04A1B2C3", "CAFE"),
                               uk_default=UkDefaultSettings(
                                   enabled=True, max_random_delay_s=900,
                                   periods=(NoChargingPeriod.parse("07:30", "10:00"),)))


def test_defaults(tmp_path: Path) -> None:
    got = load(tmp_path, '[ocpp]\nenabled = true\nurl = "ws://10.0.0.2:9000/ocpp"\n')
    assert got == OcppSettings(url="ws://10.0.0.2:9000/ocpp", charge_point_id="io7-garage-01",
                               free_id_tag="io7-garage-01")
    assert got.auth_mode is AuthMode.NONE and not got.uk_default.enabled


@pytest.mark.parametrize(("table", "key", "problem"), [
    ('url = "http://csms/ocpp"', "ocpp.url", "ws://host"),
    ('url = "ws://csms/ocpp?x=1"', "ocpp.url", "no query"),
    ('url = "ws://csms:99999/ocpp"', "ocpp.url", "not a URL"),
    ('url = "wss://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = "' + KEY + '"',
     "ocpp.url", "profile 1 is Basic auth over ws://"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 2\nauthorization_key = "' + KEY + '"',
     "ocpp.url", "over TLS"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 4', "ocpp.security_profile", "0-3"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 3', "ocpp.url", "wss://"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1', "ocpp.authorization_key", "16-40"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = "short"',
     "ocpp.authorization_key", "16-40"),
    ('url = "ws://csms/ocpp"\nauthorization_key = "' + KEY + '"',
     "ocpp.authorization_key", "only sent with security_profile 1 or 2"),
    # guessable passwords (agent.ocpp.keyvalues rule 2), with what to do about them
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = '
     '"change-me-16-to-40-chars"', "ocpp.authorization_key", "placeholder ('changeme')"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = "CHANGE_ME_PLEASE_NOW"',
     "ocpp.authorization_key", "openssl rand -hex 20"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = "' + "x" * 20 + '"',
     "ocpp.authorization_key", "only 1 different"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = "0123456789abcdef"',
     "ocpp.authorization_key", "run like"),
    ('url = "ws://csms/ocpp"\nsecurity_profile = 1\nauthorization_key = "abcdefghabcdefgh"',
     "ocpp.authorization_key", "repeats a pattern"),
    ('url = "ws://csms/ocpp"\nca_file = "ca.pem"', "ocpp.ca_file", "wss://"),
    ('url = "wss://csms/ocpp"\nca_file = "missing.pem"', "ocpp.ca_file", "no such file"),
    ('url = "ws://csms/ocpp"\ncharge_point_id = "a b"', "ocpp.charge_point_id", "letters"),
    ('url = "ws://csms/ocpp"\nserial_number = "' + "9" * 26 + '"', "ocpp.serial_number",
     "1-25"),
    ('url = "ws://csms/ocpp"\nheartbeat = 5', "ocpp.heartbeat", "unknown key"),
    ("security_profile = 0", "ocpp.url", "required"),
    ('url = "ws://csms/ocpp"\nauth_mode = "rfid"', "ocpp.auth_mode", "not one of"),
    ('url = "ws://csms/ocpp"\nfree_id_tag = "' + "x" * 21 + '"', "ocpp.free_id_tag", "1-20"),
    ('url = "ws://csms/ocpp"\nlocal_list = "A1"', "ocpp.local_list", "list of idTags"),
    ('url = "ws://csms/ocpp"\nlocal_list = ["A\u00e9"]', "ocpp.local_list", "printable"),
    ('url = "ws://csms/ocpp"\n[ocpp.uk_default]\nmax_random_delay_s = 5000',
     "ocpp.uk_default.max_random_delay_s", "0-1800"),
    ('url = "ws://csms/ocpp"\n[ocpp.uk_default]\ntz = "Mars/Base"', "ocpp.uk_default.tz",
     "unknown time zone"),
], ids=lambda v: v.split("\n")[-1] if isinstance(v, str) else "")
def test_bad_values_name_key_and_range(tmp_path: Path, table: str, key: str,
                                       problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"[ocpp]\nenabled = true\n{table}\n")
    assert info.value.key == key and info.value.file == tmp_path / "agent.toml"
    assert problem in info.value.problem


def test_csms_url_override(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BASE)
    config = load_agent_config(path)
    on = with_csms_url(config, "ws://127.0.0.1:9000/ocpp")  # enables OCPP with defaults
    assert on.ocpp == OcppSettings(url="ws://127.0.0.1:9000/ocpp",
                                   charge_point_id="io7-garage-01", free_id_tag="io7-garage-01")
    path.write_text(BASE + f'[ocpp]\nenabled = true\nurl = "ws://a/b"\nsecurity_profile = 1\n'
                           f'authorization_key = "{KEY}"\n')
    kept = with_csms_url(load_agent_config(path), "ws://b:1/c")
    assert kept.ocpp is not None and (kept.ocpp.url, kept.ocpp.security_profile) == (
        "ws://b:1/c", 1)
    with pytest.raises(ConfigError, match="--csms-url") as info:
        with_csms_url(load_agent_config(path), "wss://b/c")  # profile 1 is ws:// only
    assert "profile 1" in info.value.problem


DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
STRONG = "q8Xv-3LkT-w9Zr-Fp2M-c7Hs"  # what an installer generates


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("scenario-*/agent*.toml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_deploy_examples_ship_no_usable_secret(tmp_path: Path, path: Path) -> None:
    text = path.read_text()
    assert "change-me" not in text
    assert not re.search(r"^\s*authorization_key\s*=", text, re.MULTILINE)  # commented
    if "[ocpp]" not in text:
        return
    assert load_agent_config(path).ocpp is None  # off until the installer sets the key
    # Following the example's instruction (key set, OCPP on) gives a working table.
    head, ocpp = text.split("[ocpp]", 1)
    ocpp = re.sub(r"^# authorization_key = \S+", f'authorization_key = "{STRONG}"', ocpp,
                  count=1, flags=re.MULTILINE)
    ocpp = re.sub(r"^enabled = false", "enabled = true", ocpp, count=1, flags=re.MULTILINE)
    (tmp_path / "agent.toml").write_text(head + "[ocpp]" + ocpp)
    (tmp_path / "csms-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    got = load_agent_config(tmp_path / "agent.toml").ocpp
    assert got is not None
    if "# authorization_key" in text:
        assert got.security_profile == 2 and got.authorization_key == STRONG
