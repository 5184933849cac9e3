"""master.web.chargersettings: a change is checked by the TOML loader itself, so its
refusal is word for word what io7d would say loading a file with that value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from master.errors import ConfigError
from master.io7dconfig import load_io7_config
from master.web.chargersettings import (
    SECRET_SHOWN,
    SettingsError,
    load,
    pending,
    plan_change,
    running,
    shown,
)
from master.web.tomlwrite import edited
from tests.web.support import io7_toml

BASE = io7_toml(state="state", head="# a test bench's io7.toml\n", limit_note="  # manual 6.3",
                members='"io7-01" = "127.0.0.1:50051"')
OCPP_ON = BASE + """
[ocpp]
enabled = true
url = "ws://127.0.0.1:9000/ocpp"
"""
KEY = "Qm7vT2xL9pR4wZ8kN3bY"  # made up for the test: 20 printable characters

BAD: list[tuple[str, str, Any]] = [  # name, key, value
    ("limit above 63 A", "charger.current_limit_a", 64),
    ("limit below 6 A", "charger.current_limit_a", 5),
    ("limit not a number", "charger.current_limit_a", "ten"),
    ("limit removed", "charger.current_limit_a", None),
    ("wiring to L4", "connectors.1.wiring", ["L4"]),
    ("two lines on one phase", "connectors.2.wiring", ["L1", "L1", "-"]),
    ("hard max above 80 A", "connectors.1.hard_max_a", 90),
    ("kit without rating", "ct.enabled", True),
    ("random delay past 1800 s", "ocpp.uk_default.max_random_delay_s", 1801),
    ("a period ending at 25:00", "ocpp.uk_default.no_charging_periods", [["08:00", "25:00"]]),
    ("three periods", "ocpp.uk_default.no_charging_periods",
     [["01:00", "02:00"], ["03:00", "04:00"], ["05:00", "06:00"]]),
    ("unknown time zone", "ocpp.uk_default.tz", "Mars/Olympus"),
    ("security profile 5", "ocpp.security_profile", 5),
    ("profile 1 without its key", "ocpp.security_profile", 1),
    ("http url", "ocpp.url", "http://csms.example/ocpp"),
    ("unknown auth mode", "ocpp.auth_mode", "maybe"),
    ("a 21-character idTag", "ocpp.local_list", ["X" * 21]),
    ("charge point id with a space", "ocpp.charge_point_id", "io7 01"),
]


def _loader_message(tmp_path: Path, text: str) -> str:
    path = tmp_path / "io7.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_io7_config(path)
    return str(err.value)


@pytest.mark.parametrize(("name", "key", "value"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_gets_the_loaders_own_message(tmp_path: Path, name: str, key: str,
                                                  value: Any) -> None:
    path = tmp_path / "io7.toml"
    with pytest.raises(ConfigError) as err:
        plan_change(path, OCPP_ON, {key: value}, unlisted=True)
    assert str(err.value) == _loader_message(tmp_path, edited(OCPP_ON, {key: value}))
    assert err.value.key.startswith(key.rsplit(".", 1)[0]), name


@pytest.mark.parametrize("key, value", [
    ("ocpp.uk_default.max_random_delay_s", 1801),
    ("ocpp.uk_default.no_charging_periods", [["08:00", "8:00"]]),
    ("ocpp.local_list", ["é"]),
    ("ocpp.auth_mode", "maybe"),
])
def test_with_ocpp_off_its_keys_are_still_checked_with_the_same_words(
        tmp_path: Path, key: str, value: Any) -> None:
    """The loader skips [ocpp] while it is off; the web does not let a bad value wait
    there: the same readers give the message the loader gives once OCPP is on."""
    path = tmp_path / "io7.toml"
    with pytest.raises(ConfigError) as err:
        plan_change(path, BASE, {key: value}, unlisted=True)
    assert str(err.value) == _loader_message(tmp_path, edited(OCPP_ON, {key: value}))


def test_a_key_this_api_does_not_edit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"group\.limit_a: not a setting"):
        plan_change(tmp_path / "io7.toml", BASE, {"group.limit_a": 10})
    with pytest.raises(SettingsError, match="cannot be written to TOML"):
        plan_change(tmp_path / "io7.toml", BASE, {"ocpp.local_list": ["A", None]},
                    unlisted=True)
    with pytest.raises(SettingsError, match="own endpoint"):
        plan_change(tmp_path / "io7.toml", BASE, {"ocpp.local_list": ["A"]})


def test_the_charger_limit_is_live_and_the_rest_waits_for_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "io7.toml"
    plan = plan_change(path, OCPP_ON, {"charger.current_limit_a": 10,
                                       "ocpp.uk_default.max_random_delay_s": 900,
                                       "connectors.1.wiring": ["L1", "L2", "L3"]})
    assert plan.live == ("charger.current_limit_a",)
    assert list(plan.restart) == ["ocpp.uk_default.max_random_delay_s"]  # wiring unchanged
    assert plan.config.agent.charger_limit_a == 10.0
    assert "# manual 6.3" in plan.text and "current_limit_a = 10" in plan.text
    off = plan_change(path, BASE, {"ocpp.auth_mode": "local_list"})
    assert "ocpp.enabled = true" in off.restart["ocpp.auth_mode"]


def test_values_fill_defaults_mask_the_key_and_show_what_waits(tmp_path: Path) -> None:
    path = tmp_path / "io7.toml"
    text = edited(OCPP_ON, {"ocpp.security_profile": 1, "ocpp.authorization_key": KEY})
    config, values = load(path, text)
    assert values["ocpp.uk_default.max_random_delay_s"] == 600  # the Regulations' default
    assert values["ocpp.uk_default.no_charging_periods"] == [["08:00", "11:00"],
                                                             ["16:00", "22:00"]]
    assert values["connectors.2.wiring"] == ["L1", "L2", "L3"]
    assert values["ct.enabled"] is False and values["ct.rated_a"] is None
    assert shown(values)["ocpp.authorization_key"] == SECRET_SHOWN
    assert KEY not in repr(shown(values))
    old, _ = load(path, OCPP_ON)
    now = running(old, 10.0)
    assert set(pending(values, now, config)) == {"charger.current_limit_a",
                                                 "ocpp.security_profile",
                                                 "ocpp.authorization_key"}
