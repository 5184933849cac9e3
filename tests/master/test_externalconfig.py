"""master.toml's keys for external site limits: [group] local_controller and [ems]; every
bad value names the file, the dotted key and what is allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from master.config import load_master_config
from master.errors import ConfigError
from tests.master.support import toml

BASE: dict[str, Any] = {"group": {"name": "garage", "limit_a": 63},
                        "tls": {"plaintext": True}}


def load(tmp_path: Path, group: dict[str, Any] | None = None,
         ems: dict[str, Any] | None = None) -> Any:
    data = {**BASE, "group": {**BASE["group"], **(group or {})}}
    if ems is not None:
        data["ems"] = ems
    path = tmp_path / "master.toml"
    path.write_text(toml(data))
    return load_master_config(path)


def test_off_by_default(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert (cfg.local_controller, cfg.ems) == (None, None)


def test_local_controller_and_ems_load(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"local_controller": "io7-01"},
               {"enabled": True, "listen": "127.0.0.1:5020", "validity_s": 30})
    assert cfg.local_controller == "io7-01"
    assert (cfg.ems.host, cfg.ems.port, cfg.ems.validity_s) == ("127.0.0.1", 5020, 30)


def test_a_disabled_ems_table_is_not_read(tmp_path: Path) -> None:
    assert load(tmp_path, ems={"enabled": False, "listen": "nonsense"}).ems is None


@pytest.mark.parametrize(("group", "ems", "key", "says"), [
    ({"local_controller": "io7 01"}, None, "group.local_controller", "not a charger id"),
    ({"local_controller": 7}, None, "group.local_controller", "not a charger id"),
    ({}, {"enabled": True}, "ems.listen", "is required"),
    ({}, {"enabled": True, "listen": "5020"}, "ems.listen", "host:port"),
    ({}, {"enabled": True, "listen": "0.0.0.0:70000"}, "ems.listen", "host:port"),
    ({}, {"enabled": True, "listen": "127.0.0.1:0", "validity_s": 0}, "ems.validity_s",
     "[1, 65535]"),
    ({}, {"enabled": True, "listen": "127.0.0.1:0", "validity_s": 1.5}, "ems.validity_s",
     "whole number"),
    ({}, {"enabled": True, "listen": "127.0.0.1:0", "port": 502}, "ems.port", "unknown key"),
])
def test_bad_values_name_file_key_and_range(tmp_path: Path, group: dict[str, Any],
                                            ems: dict[str, Any] | None, key: str,
                                            says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, group, ems)
    assert err.value.key == key and says in err.value.problem
    assert str(tmp_path / "master.toml") in str(err.value)
