"""The master's TOML config: scenario files load; every bad value names file, key, range."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import pytest

import master.config as master_config_module
from hw.capabilities import ClampReading
from hw.modbus.transport import SerialSettings, TcpSettings
from master.allocation import CtPlacement, Mode, OfflineStrategy, Phase
from master.config import TUNING_FIELDS, MasterConfig, load_master_config
from master.errors import ConfigError, RequestError
from tests.master.support import L1, L2, L3, member, toml

SCENARIO_B: dict[str, Any] = {
    "master": {"id": "garage-master", "listen": "127.0.0.1:0", "state_db": "members.sqlite3"},
    "group": {"name": "garage", "mode": "dynamic", "limit_a": 100, "fallback_limit_a": 40,
              "ct_placement": "grid", "offline_strategy": "minimise", "closed": True,
              "tuning": {"ramp_up_a": 6.0, "min_pause_s": 60}},
    "ct": {"enabled": True, "rated_a": 200, "reversed": [2], "stale_after_s": 3.0,
           "lost_after_s": 12.0, "serial": {"port": "/dev/ttyUSB0", "baudrate": 19200,
                                              "parity": "E"}},
}
SCENARIO_C: dict[str, Any] = {
    "group": {"name": "garage-l2", "phases": ["L2"], "mode": "dynamic", "limit_a": 40,
              "fallback_limit_a": 16, "ct_placement": "other_loads", "margin_a": 1.0},
    "ct": {"enabled": True, "rated_a": 100, "tcp": {"host": "10.0.0.5", "port": 5020}},
}


def write(tmp_path: Path, data: dict[str, Any], name: str = "master.toml") -> Path:
    path = tmp_path / name
    path.write_text(toml(data if "tls" in data else {**data, "tls": {"plaintext": True}}))
    return path


def test_scenario_b_loads(tmp_path: Path) -> None:
    cfg = load_master_config(write(tmp_path, SCENARIO_B))
    g = cfg.group
    assert (g.name, g.mode, g.limit_a, g.fallback_limit_a) == ("garage", Mode.DYNAMIC, 100, 40)
    assert g.phases == (L1, L2, L3)
    assert (g.ct_placement, g.offline_strategy) == (CtPlacement.GRID, OfflineStrategy.MINIMISE)
    assert (g.ramp_up_a, g.min_pause_s, g.rotation_period_s) == (6.0, 60.0, 5400.0)
    assert (g.ct_stale_after_s, g.ct_timeout_s) == (3.0, 12.0)
    assert g.lease_s == 3.0  # 3 cycles of 1 s, the defaults
    assert (cfg.cycle_ms, cfg.lease_cycles, cfg.lease_ms) == (1000, 3, 3000)
    assert cfg.closed is True
    assert cfg.master_id == "garage-master"
    assert cfg.state_db == tmp_path / "members.sqlite3"  # relative to the config file
    assert cfg.ct is not None
    assert [(c.clamp, c.phase, c.reversed) for c in cfg.ct.clamps] == [
        (1, L1, False), (2, L2, True), (3, L3, False)]
    endpoint = cfg.ct.bus.endpoint
    assert isinstance(endpoint, SerialSettings)
    assert (endpoint.port, endpoint.baudrate, endpoint.parity) == ("/dev/ttyUSB0", 19200, "E")
    kit = cfg.ct.kit_config()
    assert [(c.clamp, c.rated_a, c.reversed) for c in kit.clamps] == [
        (1, 200, False), (2, 200, True), (3, 200, False)]
    readings = (ClampReading(clamp=1, current_a=10.0), ClampReading(clamp=3, current_a=-4.0))
    assert cfg.ct.site_currents(readings) == {L1: 10.0, L3: -4.0}


def test_scenario_c_single_phase_clamp_1_on_the_group_phase(tmp_path: Path) -> None:
    cfg = load_master_config(write(tmp_path, SCENARIO_C))
    assert cfg.group.phases == (L2,)
    assert cfg.ct is not None
    assert [(c.clamp, c.phase) for c in cfg.ct.clamps] == [(1, L2)]
    assert isinstance(cfg.ct.bus.endpoint, TcpSettings)
    assert cfg.ct.bus.endpoint.port == 5020
    assert cfg.ct.site_currents([ClampReading(clamp=1, current_a=12.5)]) == {L2: 12.5}


def test_static_group_without_ct_uses_defaults(tmp_path: Path) -> None:
    cfg = load_master_config(write(tmp_path, {"group": {"name": "g", "limit_a": 63}}))
    assert cfg.listen == "0.0.0.0:50051"
    assert cfg.ct is None
    assert cfg.group.mode is Mode.STATIC
    assert cfg.group.static_limit_a == 63
    assert cfg.state_db == Path("/var/lib/io7/master.sqlite3")
    assert cfg.master_id  # the host name


def test_limit_override_caps_the_fallback(tmp_path: Path) -> None:
    cfg = load_master_config(write(tmp_path, SCENARIO_B))
    assert cfg.group_config() is cfg.group
    lowered = cfg.group_config(limit_override=30.0)
    assert (lowered.limit_a, lowered.fallback_limit_a) == (30.0, 30.0)
    raised = cfg.group_config(limit_override=160.0)
    assert (raised.limit_a, raised.fallback_limit_a) == (160.0, 40.0)
    with pytest.raises(RequestError, match=r"limit_a=2\.0"):
        cfg.group_config(limit_override=2.0)


def edit(base: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    *path, last = dotted.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()

# (row name, key edited in SCENARIO_B, value, key named by the error, text of the message)
BAD_VALUES = [
    ("limit below 6 A", "group.limit_a", 3, "group.limit_a", "[6.0, 50000.0]"),
    ("limit in watts", "group.limit_a", 100_000, "group.limit_a", "[6.0, 50000.0]"),
    ("limit as text", "group.limit_a", "100A", "group.limit_a", "must be a number"),
    ("fallback above limit", "group.fallback_limit_a", 120, "group.fallback_limit_a",
     "[0.0, 100.0]"),
    ("negative margin", "group.margin_a", -1, "group.margin_a", "allowed range"),
    ("unknown mode", "group.mode", "turbo", "group.mode", "['static', 'dynamic']"),
    ("unknown strategy", "group.offline_strategy", "sometimes", "group.offline_strategy",
     "['zero', 'minimise', 'maximise']"),
    ("unknown placement", "group.ct_placement", "roof", "group.ct_placement", "'other_loads'"),
    ("unknown phase", "group.phases", ["L1", "L4"], "group.phases", "L1, L2, L3"),
    ("phase twice", "group.phases", ["L1", "L1"], "group.phases", "twice"),
    ("closed as text", "group.closed", "yes", "group.closed", "true or false"),
    ("no group name", "group.name", _DELETE, "group.name", "is required"),
    ("no limit", "group.limit_a", _DELETE, "group.limit_a", "is required"),
    ("typo", "group.limt_a", 100, "group.limt_a", "unknown key"),
    ("ramp of 0 A", "group.tuning.ramp_up_a", 0, "group.tuning.ramp_up_a", "[0.1, 80.0]"),
    ("unknown tuning knob", "group.tuning.speed", 2, "group.tuning.speed", "unknown key"),
    ("cycle too fast", "master.cycle_ms", 5, "master.cycle_ms", "[100, 10000]"),
    ("lease of 1 cycle", "master.lease_cycles", 1, "master.lease_cycles", "[2, 30]"),
    ("listen without port", "master.listen", "localhost", "master.listen", "host:port"),
    ("listen port too big", "master.listen", "0.0.0.0:70000", "master.listen", "0..65535"),
    ("stale after 0 s", "ct.stale_after_s", 0, "ct.stale_after_s", "[0.1, 3600.0]"),
    ("lost before stale", "ct.lost_after_s", 1.0, "ct.lost_after_s", "[3.0, 3600.0]"),
    ("modbus timeout 2 s", "ct.timeout_s", 2.0, "ct.timeout_s", "[0.01, 0.5]"),
    ("two retries", "ct.retries", 2, "ct.retries", "[0, 1]"),
    ("rated 0 A", "ct.rated_a", 0, "ct.rated_a", "[1, 2000]"),
    ("address 300", "ct.address", 300, "ct.address", "[1, 247]"),
    ("unknown profile", "ct.profile", "sdm999", "ct.profile", "'ctkit'"),
    ("reversed clamp 4", "ct.reversed", [4], "ct.reversed", "clamp numbers 1-3"),
    ("clamp 4", "ct.clamps", {"1": "L1", "2": "L2", "4": "L3"}, "ct.clamps.4", "1, 2 and 3"),
    ("a phase without clamp", "ct.clamps", {"1": "L1", "2": "L2"}, "ct.clamps", "['L3']"),
    ("two clamps on L1", "ct.clamps", {"1": "L1", "2": "L1", "3": "L3"}, "ct.clamps",
     "two clamps"),
    ("odd baud rate", "ct.serial.baudrate", 1234, "ct.serial.baudrate", "9600"),
    ("no serial port", "ct.serial.port", _DELETE, "ct.serial.port", "is required"),
    ("parity X", "ct.serial.parity", "X", "ct.serial.parity", "N, E, O"),
    ("serial and tcp", "ct.tcp", {"host": "10.0.0.5"}, "ct.serial", "exactly one bus"),
    ("dynamic without CT", "ct.enabled", False, "ct.enabled", "group.mode = \"static\""),
    ("dynamic without fallback", "group.fallback_limit_a", _DELETE, "group.fallback_limit_a",
     "required in dynamic mode"),
]


@pytest.mark.parametrize(("row", "dotted", "value", "key", "text"), BAD_VALUES,
                         ids=[r[0] for r in BAD_VALUES])
def test_bad_value_names_file_key_and_range(tmp_path: Path, row: str, dotted: str,
                                            value: Any, key: str, text: str) -> None:
    path = write(tmp_path, edit(SCENARIO_B, dotted, value))
    with pytest.raises(ConfigError) as info:
        load_master_config(path)
    err = info.value
    assert (err.file, err.key) == (path, key), row
    assert str(err).startswith(f"{path}: {key}: ")
    assert text in str(err), str(err)


def test_scenario_c_clamp_on_another_phase_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, edit(SCENARIO_C, "ct.clamps", {"1": "L1"}))
    with pytest.raises(ConfigError, match=r"ct\.clamps\.1: L1 is not one of the group's "
                       r"phases \['L2'\]"):
        load_master_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_master_config(path)
    assert info.value.file == path
    assert info.value.key == ""
    assert "cannot read the config file" in str(info.value)
    assert str(path) in str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[group\nname = 'x'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_master_config(path)


def test_no_group_table(tmp_path: Path) -> None:
    path = write(tmp_path, {"master": {"id": "x"}})
    with pytest.raises(ConfigError, match=r": group: is required"):
        load_master_config(path)


def loaded(tmp_path: Path, base: dict[str, Any]) -> MasterConfig:
    return load_master_config(write(tmp_path, base))


def test_check_members_minimise_needs_6a_per_connector(tmp_path: Path) -> None:
    # Minimise, fallback 40 A: 6 connectors x 6 A = 36 A fit, 8 x 6 A = 48 A do not.
    cfg = loaded(tmp_path, SCENARIO_B)
    three = [member(f"c{n}") for n in range(3)]
    cfg.check_members(three)
    with pytest.raises(ConfigError) as info:
        cfg.check_members([*three, member("c3")])
    assert info.value.key == "group.offline_strategy"
    assert "needs 48.0 A on L1" in str(info.value)
    assert "static limit is 40.0 A" in str(info.value)


def test_check_members_wiring_outside_the_group_phase(tmp_path: Path) -> None:
    cfg = loaded(tmp_path, SCENARIO_C)
    cfg.check_members([member("ok", group="garage-l2", wiring=(Phase.L2, None, None))])
    with pytest.raises(ConfigError) as info:
        cfg.check_members([member("x", group="garage-l2", wiring=(Phase.L1, None, None))])
    assert info.value.key == "group.phases"
    assert "outside group garage-l2's phases ['L2']" in str(info.value)


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = master_config_module.__doc__ or ""
    example = doc[doc.index("    [master]"):]
    path = tmp_path / "example.toml"
    path.write_text("\n".join(line.removeprefix("    ") for line in example.splitlines()))
    cfg = load_master_config(path)
    assert (cfg.group.name, cfg.group.limit_a, cfg.group.ramp_up_a) == ("garage", 100, 8.0)
    assert cfg.ct is not None
    assert [(c.clamp, c.phase, c.reversed) for c in cfg.ct.clamps] == [
        (1, L1, False), (2, L2, True), (3, L3, False)]


FLOAT_KEYS = ["group.limit_a", "group.fallback_limit_a", "group.margin_a",
              *(f"group.tuning.{name}" for name in TUNING_FIELDS), "ct.rated_a",
              "ct.timeout_s", "ct.stale_after_s", "ct.lost_after_s", "ct.frozen_after_s",
              "ct.frozen_draw_change_a"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_nan_and_inf_are_refused_with_the_range(tmp_path: Path, key: str, value: float
                                                ) -> None:
    """Every float key of master.toml: "must be a finite number in [lo, hi]", never
    "outside [-inf, inf]"."""
    path = write(tmp_path, edit(SCENARIO_B, key, value))
    with pytest.raises(ConfigError) as info:
        load_master_config(path)
    assert info.value.key == key, str(info.value)
    assert re.search(r"must be a finite number in \[-?[\d.]+, [\d.]+\]", str(info.value)), \
        str(info.value)


def test_limit_nan_says_finite_and_the_range(tmp_path: Path) -> None:
    path = write(tmp_path, edit(SCENARIO_B, "group.limit_a", math.nan))
    with pytest.raises(ConfigError, match=re.escape(
            "group.limit_a: limit_a=nan must be a finite number in [6.0, 50000.0]")):
        load_master_config(path)
