"""The agent's config: a valid file loads; every bad value names the file, key and range."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.bounds import LinkBounds
from agent.config import AgentConfig, load_agent_config
from agent.errors import ConfigError
from agent.hwsettings import MeterKind
from hw.modbus.transport import SerialSettings, TcpSettings
from master.allocation import Mode, Phase

GROUP_MEMBER = """
[charger]
id = "io7-garage-01"
group = "garage"
current_limit_a = 32

[connectors.1]
wiring = ["L1", "L2", "L3"]
hard_max_a = 32

[connectors.2]
wiring = ["L2", "L3", "L1"]
hard_max_a = 20
[connectors.2.meter]
kind = "modbus"
profile = "sdm630"
address = 2
port = "/dev/ttyUSB1"

[master]
address = "10.0.0.10:50051"
initial_failsafe_a = 6

[tls]
dir = "tls"

[logging]
level = "debug"

[state]
dir = "state"
"""

AGENT_ONLY = """
[charger]
id = "home"
current_limit_a = 16

[connectors.1]
wiring = ["L2"]

[agent_only]
site_limit_a = 25
mode = "dynamic"
fallback_limit_a = 10
[agent_only.ct]
clamps = [2]
rated_a = 100
tcp = "127.0.0.1:5020"

[sim]
seed = 7
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_a_group_member_loads(tmp_path: Path) -> None:
    config = load_agent_config(write(tmp_path, GROUP_MEMBER))
    assert isinstance(config, AgentConfig)
    assert (config.charger_id, config.group, config.charger_limit_a) == (
        "io7-garage-01", "garage", 32.0)
    assert not config.agent_only_mode and config.master_address == "10.0.0.10:50051"
    assert config.initial_failsafe_a == 6.0 and config.agent_only is None
    assert config.link_bounds == LinkBounds(max_failsafe_a=6.0, min_lease_s=1.0,
                                            max_lease_s=10.0)  # the defaults
    one, two = config.connectors
    assert one.wiring == (Phase.L1, Phase.L2, Phase.L3) and one.meter.kind is MeterKind.SIM
    assert two.wiring == (Phase.L2, Phase.L3, Phase.L1) and config.hard_max_a == {1: 32.0, 2: 20.0}
    assert two.meter.kind is MeterKind.MODBUS and two.meter.bus is not None
    assert isinstance(two.meter.bus.endpoint, SerialSettings)
    assert two.meter.bus.endpoint.port == "/dev/ttyUSB1"
    assert two.meter.meter_config("socket 2").device_id == 2
    assert (config.board, config.log_level, config.sim_seed) == ("sim", "debug", None)
    assert config.state_dir == tmp_path / "state"  # relative to the config file


def test_agent_only_mode_loads(tmp_path: Path) -> None:
    config = load_agent_config(write(tmp_path, AGENT_ONLY))
    assert config.agent_only_mode and config.group == "home"
    assert config.connectors[0].wiring == (Phase.L2, None, None)
    assert config.connectors[0].hard_max_a == 32.0  # default
    assert config.agent_only is not None
    group = config.agent_only.group
    assert (group.mode, group.limit_a, group.fallback_limit_a, group.phases) == (
        Mode.DYNAMIC, 25.0, 10.0, (Phase.L2,))
    ct = config.agent_only.ct
    assert ct is not None and ct.clamps == (2,)
    assert isinstance(ct.bus.endpoint, TcpSettings) and ct.bus.endpoint.port == 5020
    assert [c.clamp for c in ct.kit_config().clamps] == [2]
    assert (config.sim_seed, config.state_dir) == (7, Path("/var/lib/io7"))


def test_a_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    config = load_agent_config(write(tmp_path, """
[charger]
id = "x"
current_limit_a = 6.3
[connectors.1]
wiring = ["L1", "-", "-"]
"""))
    assert config.agent_only_mode and config.agent_only is None
    assert (config.charger_limit_a, config.log_level, config.board) == (6.3, "info", "sim")


# (name, base text, old, new, key, fragment of the message)
BAD = [
    ("charger limit too high", GROUP_MEMBER, "current_limit_a = 32", "current_limit_a = 70",
     "charger.current_limit_a", "[6, 63] A"),
    ("charger limit too low", GROUP_MEMBER, "current_limit_a = 32", "current_limit_a = 5",
     "charger.current_limit_a", "[6, 63] A"),
    ("charger limit as text", GROUP_MEMBER, "current_limit_a = 32", 'current_limit_a = "32"',
     "charger.current_limit_a", "must be a number"),
    ("charger limit missing", GROUP_MEMBER, "current_limit_a = 32", "",
     "charger.current_limit_a", "is required"),
    ("bad charger id", GROUP_MEMBER, 'id = "io7-garage-01"', 'id = "io7 garage"',
     "charger.id", "letters, digits"),
    ("group required with a master", GROUP_MEMBER, 'group = "garage"', "",
     "charger.group", "is required"),
    ("hard max too high", GROUP_MEMBER, "hard_max_a = 20", "hard_max_a = 100",
     "connectors.2.hard_max_a", "[6, 80] A"),
    ("unknown phase", GROUP_MEMBER, '["L2", "L3", "L1"]', '["L2", "L4", "L1"]',
     "connectors.2.wiring", "'L4' is not L1, L2, L3"),
    ("two lines on one phase", GROUP_MEMBER, '["L2", "L3", "L1"]', '["L2", "L2", "L1"]',
     "connectors.2.wiring", "two lines to one site phase"),
    ("L1 not wired", GROUP_MEMBER, '["L2", "L3", "L1"]', '["-", "L3", "L1"]',
     "connectors.2.wiring", "L1 must be wired"),
    ("two wired lines", GROUP_MEMBER, '["L2", "L3", "L1"]', '["L2", "L3"]',
     "connectors.2.wiring", "single-phase"),
    ("connector 3", AGENT_ONLY, "[connectors.1]", "[connectors.3]",
     "connectors.3", "connectors 1 and 2"),
    ("unknown meter kind", GROUP_MEMBER, 'kind = "modbus"', 'kind = "mbus"',
     "connectors.2.meter.kind", "'sim', 'modbus'"),
    ("unknown meter profile", GROUP_MEMBER, 'profile = "sdm630"', 'profile = "sdm72"',
     "connectors.2.meter.profile", "sdm120"),
    ("bad Modbus address", GROUP_MEMBER, "address = 2", "address = 300",
     "connectors.2.meter.address", "1-247"),
    ("port and tcp", GROUP_MEMBER, 'port = "/dev/ttyUSB1"',
     'port = "/dev/ttyUSB1"\ntcp = "10.0.0.5:502"', "connectors.2.meter.port", "exactly one"),
    ("timeout too long", GROUP_MEMBER, 'port = "/dev/ttyUSB1"',
     'port = "/dev/ttyUSB1"\ntimeout_s = 2', "connectors.2.meter.timeout_s", "[0.01, 0.5] s"),
    ("odd baud rate", GROUP_MEMBER, 'port = "/dev/ttyUSB1"',
     'port = "/dev/ttyUSB1"\nbaudrate = 9601', "connectors.2.meter.baudrate", "9600"),
    ("master without port", GROUP_MEMBER, '"10.0.0.10:50051"', '"10.0.0.10"',
     "master.address", "host:port"),
    ("failsafe in (0, 6)", GROUP_MEMBER, "initial_failsafe_a = 6", "initial_failsafe_a = 3",
     "master.initial_failsafe_a", "less than 6 A"),
    ("failsafe above the charger limit", GROUP_MEMBER, "initial_failsafe_a = 6",
     "initial_failsafe_a = 40", "master.initial_failsafe_a", "[0, 32] A"),
    ("fail-safe bound in (0, 6)", GROUP_MEMBER, "initial_failsafe_a = 6",
     "initial_failsafe_a = 0\nmax_failsafe_a = 4", "master.max_failsafe_a", "less than 6 A"),
    ("fail-safe bound above the charger limit", GROUP_MEMBER, "initial_failsafe_a = 6",
     "max_failsafe_a = 40", "master.max_failsafe_a", "[0, 32] A"),
    ("fail-safe bound below the initial fail-safe", GROUP_MEMBER, "initial_failsafe_a = 6",
     "initial_failsafe_a = 16\nmax_failsafe_a = 10", "master.max_failsafe_a",
     "initial_failsafe_a = 16"),
    ("lease bound 0", GROUP_MEMBER, "initial_failsafe_a = 6",
     "initial_failsafe_a = 6\nmin_lease_s = 0", "master.min_lease_s", "[0.1, 60] s"),
    ("lease bounds crossed", GROUP_MEMBER, "initial_failsafe_a = 6",
     "initial_failsafe_a = 6\nmin_lease_s = 5\nmax_lease_s = 4", "master.max_lease_s",
     "[5, 3600] s"),
    ("agent_only with a master", GROUP_MEMBER, "[logging]", "[agent_only]\nsite_limit_a = 25\n"
     "[logging]", "agent_only.site_limit_a", "only read without [master]"),
    ("typo in a key", GROUP_MEMBER, "hard_max_a = 32", "hard_maxa = 32",
     "connectors.1.hard_maxa", "unknown key"),
    ("unknown table", GROUP_MEMBER, "[logging]", "[loging]", "loging", "unknown key"),
    ("bad log level", GROUP_MEMBER, 'level = "debug"', 'level = "verbose"',
     "logging.level", "'debug', 'info'"),
    ("unknown board", GROUP_MEMBER, "[logging]", '[board]\nkind = "io7-v2"\n[logging]',
     "board.kind", "['sim']"),
    ("site limit missing", AGENT_ONLY, "site_limit_a = 25", "",
     "agent_only.site_limit_a", "is required"),
    ("fallback above the site limit", AGENT_ONLY, "fallback_limit_a = 10",
     "fallback_limit_a = 30", "agent_only.fallback_limit_a", "[0, 25] A"),
    ("dynamic without fallback", AGENT_ONLY, "fallback_limit_a = 10", "",
     "agent_only.fallback_limit_a", "is required"),
    ("dynamic without clamps", AGENT_ONLY, "[agent_only.ct]", "[agent_only.ct]\nenabled = false",
     "agent_only.mode", "enable [agent_only.ct]"),
    ("clamp 4", AGENT_ONLY, "clamps = [2]", "clamps = [4]", "agent_only.ct.clamps",
     "clamp numbers 1-3"),
    ("clamp type", AGENT_ONLY, "clamps = [2]", 'clamps = [2]\ntype = "load"',
     "agent_only.ct.type", "['site']"),
    ("rated value 0", AGENT_ONLY, "rated_a = 100", "rated_a = 0", "agent_only.ct.rated_a",
     "[1, 2000] A"),
    ("negative seed", AGENT_ONLY, "seed = 7", "seed = -1", "sim.seed", "whole number"),
    ("no connectors", AGENT_ONLY, '[connectors.1]\nwiring = ["L2"]', "", "connectors",
     "is required"),
]


@pytest.mark.parametrize(("name", "base", "old", "new", "key", "fragment"), BAD,
                         ids=[b[0] for b in BAD])
def test_a_bad_value_names_file_key_and_range(tmp_path: Path, name: str, base: str, old: str,
                                              new: str, key: str, fragment: str) -> None:
    assert old in base, name
    path = write(tmp_path, base.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    error = info.value
    assert (error.file, error.key) == (path, key), str(error)
    assert fragment in error.problem, str(error)
    assert str(error).startswith(f"{path}: {key}: ")


def test_the_bounds_on_a_master_load(tmp_path: Path) -> None:
    text = GROUP_MEMBER.replace("initial_failsafe_a = 6", "initial_failsafe_a = 10\n"
                                "max_failsafe_a = 16\nmin_lease_s = 0.5\nmax_lease_s = 30")
    config = load_agent_config(write(tmp_path, text))
    assert config.link_bounds == LinkBounds(max_failsafe_a=16.0, min_lease_s=0.5,
                                            max_lease_s=30.0)
    high = GROUP_MEMBER.replace("initial_failsafe_a = 6", "initial_failsafe_a = 16")
    assert load_agent_config(write(tmp_path, high)).link_bounds.max_failsafe_a == 16.0


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="no such file") as info:
        load_agent_config(path)
    assert (info.value.file, info.value.key) == (path, "")
    assert str(path) in str(info.value)


def test_a_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_agent_config(write(tmp_path, "[charger\nid = 1"))


def test_config_errors_are_value_errors() -> None:
    error = ConfigError(file=Path("a.toml"), key="charger.id", problem="is required")
    assert isinstance(error, ValueError)
    assert str(error) == "a.toml: charger.id: is required"


# (base text, the table's header line, key, its dotted name): every float key of agent.toml
FLOAT_KEYS = [
    (GROUP_MEMBER, "[charger]", "current_limit_a", "charger.current_limit_a"),
    (GROUP_MEMBER, "[connectors.1]", "hard_max_a", "connectors.1.hard_max_a"),
    (GROUP_MEMBER, "[connectors.2.meter]", "timeout_s", "connectors.2.meter.timeout_s"),
    (GROUP_MEMBER, "[master]", "initial_failsafe_a", "master.initial_failsafe_a"),
    (GROUP_MEMBER, "[master]", "max_failsafe_a", "master.max_failsafe_a"),
    (GROUP_MEMBER, "[master]", "min_lease_s", "master.min_lease_s"),
    (GROUP_MEMBER, "[master]", "max_lease_s", "master.max_lease_s"),
    (AGENT_ONLY, "[agent_only]", "site_limit_a", "agent_only.site_limit_a"),
    (AGENT_ONLY, "[agent_only]", "margin_a", "agent_only.margin_a"),
    (AGENT_ONLY, "[agent_only]", "fallback_limit_a", "agent_only.fallback_limit_a"),
    (AGENT_ONLY, "[agent_only.ct]", "rated_a", "agent_only.ct.rated_a"),
    (AGENT_ONLY, "[agent_only.ct]", "timeout_s", "agent_only.ct.timeout_s"),
]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("base", "header", "name", "key"), FLOAT_KEYS,
                         ids=[k[3] for k in FLOAT_KEYS])
def test_nan_and_inf_are_refused_with_the_range(tmp_path: Path, base: str, header: str,
                                                name: str, key: str, value: str) -> None:
    lines = [line for line in base.splitlines() if not line.startswith(f"{name} =")]
    at = lines.index(header) + 1
    path = write(tmp_path, "\n".join([*lines[:at], f"{name} = {value}", *lines[at:]]))
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    assert info.value.key == key, str(info.value)
    assert re.search(rf"must be a finite number in \[-?[\d.]+, [\d.]+\] \w+.*, not {value}$",
                     info.value.problem), str(info.value)
