"""[priorities] and the sharing keys of master.toml (issue 12 §3): file, key, range."""

from __future__ import annotations

from pathlib import Path

import pytest

from master.config import load_master_config
from master.errors import ConfigError

BASE = """[master]
listen = "127.0.0.1:0"
[group]
name = "garage"
limit_a = 63
[group.tuning]
share_by_power = 0.5
priority_max_starve_s = 1800
[tls]
plaintext = true
"""


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "master.toml"
    path.write_text(BASE + extra)
    return load_master_config(path)


def test_priorities_per_charger_and_connector_reach_the_group(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[priorities]\n"io7-01" = 2\n"io7-03/2" = 1\n')
    g = cfg.group  # type: ignore[attr-defined]
    assert g.priorities == (("io7-01", 0, 2), ("io7-03", 2, 1))
    assert (g.share_by_power, g.priority_max_starve_s) == (0.5, 1800.0)
    assert g.priority_of(("io7-01", 2)) == 2 and g.priority_of(("io7-03", 1)) == 0


@pytest.mark.parametrize(("extra", "key", "words"), [
    ('[priorities]\n"io7-01" = 10\n', "priorities.io7-01", "0..9"),
    ('[priorities]\n"io7-01" = "high"\n', "priorities.io7-01", "whole number"),
    ('[priorities]\n"io7-01/0" = 1\n', "priorities.io7-01/0", "1..255"),
    ('[priorities]\n"io7-01/" = 1\n', "priorities.io7-01/", "charger/connector"),
    ('[priorities]\n"/2" = 1\n', "priorities./2", "charger/connector"),
])
def test_a_bad_priority_names_file_key_and_range(tmp_path: Path, extra: str, key: str,
                                                 words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    assert info.value.key == key and words in str(info.value)
    assert str(tmp_path / "master.toml") in str(info.value)


@pytest.mark.parametrize(("key", "value"), [("share_by_power", 1.5),
                                            ("priority_max_starve_s", 10)])
def test_sharing_keys_out_of_range_are_refused(tmp_path: Path, key: str, value: float
                                               ) -> None:
    path = tmp_path / "master.toml"
    path.write_text(BASE.replace(f"{key} = ", f"{key} = {value}\n# ") )
    with pytest.raises(ConfigError) as info:
        load_master_config(path)
    assert info.value.key == f"group.tuning.{key}", str(info.value)
