"""master.io7dconfig: one io7.toml per charger; errors name the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from master.errors import ConfigError
from master.io7dconfig import load_io7_config, parse

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "io7d"


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.toml")), ids=lambda p: p.name)
def test_the_examples_load(path: Path) -> None:
    config = load_io7_config(path)
    assert config.charger_id in config.members
    assert config.master.listen == config.members[config.charger_id]
    assert config.agent.group == config.master.group.name == "garage"
    assert config.raft_address("io7-02") == "192.168.10.12:50052"
    assert config.holds_ct == (config.charger_id == "io7-01")
    assert config.master.state_db == Path("/var/lib/io7/master.sqlite3")


def _example() -> dict[str, Any]:
    with (DEPLOY / "io7-01.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.mark.parametrize(("change", "key", "says"), [
    (lambda d: d.pop("group"), "group", "is required"),
    (lambda d: d["group"].pop("members"), "group.members", "is required"),
    (lambda d: d["group"]["members"].pop("io7-01"), "group.members", "this charger"),
    (lambda d: d["group"]["members"].update({"io7-02": "192.168.10.11:50052"}),
     "group.members.io7-02", "overlaps io7-01"),
    (lambda d: d["group"]["members"].update({"io7-02": "192.168.10.12"}),
     "group.members.io7-02", "host:port"),
    (lambda d: d["charger"].update({"group": "other"}), "charger.group", "not the [group] name"),
    (lambda d: d.update({"link": {"max_lease_s": 99999}}), "link.max_lease_s", ""),
    (lambda d: d["group"].pop("ct_charger"), "group.ct_charger", "dynamic mode"),
    (lambda d: d["group"].update({"ct_charger": "io7-02"}), "ct", "only the ct_charger"),
    (lambda d: d.pop("ct"), "ct", "needs [ct]"),
    (lambda d: d.update({"link": {"address": "1.2.3.4:5"}}), "link.address", "election"),
    (lambda d: d.update({"master": {"listen": "0.0.0.0:1"}}), "master.listen", "io7d"),
    (lambda d: d.update({"tls": {"plaintext": True}}), "tls.plaintext", "mutual TLS"),
    (lambda d: d["group"].update({"limit_a": -5}), "group.limit_a", ""),
    (lambda d: d.update({"mqtt_": {}}), "mqtt_", "unknown"),
    (lambda d: d.update({"mqtt": {"password": "x"}}), "mqtt.password", "never a password"),
    (lambda d: d.update({"mqtt": {}}), "mqtt.host", "required"),
    (lambda d: d.update({"master": {"cycle_ms": 250, "lease_cycles": 4}}),
     "master.lease_cycles", "at least 1.5 s"),
])
def test_bad_values_name_the_file_and_the_key(change: Any, key: str, says: str) -> None:
    data = _example()
    change(data)
    path = DEPLOY / "io7-01.toml"
    with pytest.raises(ConfigError) as err:
        parse(path, data)
    assert err.value.key == key and err.value.file == path
    assert says in err.value.problem


def test_a_lone_charger_may_run_on_a_test_bench_without_tls() -> None:
    data = _example()
    data["group"]["members"] = {"io7-01": "127.0.0.1:7101"}
    data["tls"] = {"plaintext": True}
    data["web"] = {"plaintext": True}  # no certificate: the web UI says plaintext too
    config = parse(DEPLOY / "io7-01.toml", data)
    assert config.master.tls is None and config.agent.tls_dir is None


def test_every_member_of_the_example_group_has_the_same_group_digest() -> None:
    digests = {load_io7_config(p).group_digest for p in sorted(DEPLOY.glob("*.toml"))}
    assert len(digests) == 1
    data = _example()
    data["group"]["limit_a"] = 90  # one member with another limit: another digest
    assert parse(DEPLOY / "io7-01.toml", data).group_digest not in digests
