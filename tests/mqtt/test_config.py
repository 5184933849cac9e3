"""[mqtt] of io7.toml (master/mqttconfig.py): defaults, and each refusal names the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from master.errors import ConfigError
from master.mqttconfig import read_mqtt


def test_absent_is_off_and_defaults_are_tls_on_8883(tmp_path: Path) -> None:
    assert read_mqtt(tmp_path / "io7.toml", None) is None
    s = read_mqtt(tmp_path / "io7.toml", {"host": "broker.lan"})
    assert s is not None
    assert (s.tls, s.port, s.topic_prefix, s.discovery_prefix) == (
        True, 8883, "io7", "homeassistant")
    plain = read_mqtt(tmp_path / "io7.toml", {"host": "127.0.0.1", "plaintext": True})
    assert plain is not None and (plain.tls, plain.port) == (False, 1883)


def test_the_password_comes_from_an_owner_only_file_and_is_never_shown(
        tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    os.chmod(secret, 0o600)
    s = read_mqtt(tmp_path / "io7.toml", {"host": "h", "username": "io7-01",
                                          "password_file": "mqtt-password"})
    assert s is not None and s.password == "s3cret" and "s3cret" not in repr(s)
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .* chmod 600"):
        read_mqtt(tmp_path / "io7.toml", {"host": "h", "password_file": str(secret)})


@pytest.mark.parametrize("table, key, words", [
    pytest.param({"host": "h", "password": "x"}, "mqtt.password", "never a password",
                 id="a password in the TOML"),
    pytest.param({}, "mqtt.host", "is required", id="no host"),
    pytest.param({"host": "h", "port": 0}, "mqtt.port", "[1, 65535]", id="port 0"),
    pytest.param({"host": "h", "topic_prefix": "io7/#"}, "mqtt.topic_prefix", "wildcards",
                 id="a wildcard"),
    pytest.param({"host": "h", "discovery_prefix": "/ha"}, "mqtt.discovery_prefix",
                 "leading", id="a leading slash"),
    pytest.param({"host": "h", "setpoint_max_valid_s": 0}, "mqtt.setpoint_max_valid_s",
                 "[1, 86400]", id="no validity"),
    pytest.param({"host": "h", "publish_interval_s": 0}, "mqtt.publish_interval_s",
                 "outside", id="interval 0"),
    pytest.param({"host": "h", "ca_file": "none.pem"}, "mqtt.ca_file", "not a readable file",
                 id="no CA file"),
    pytest.param({"host": "h", "password_file": "none"}, "mqtt.password_file", "cannot read",
                 id="no password file"),
    pytest.param({"host": "h", "hots": "x"}, "mqtt.hots", "unknown key", id="a typo"),
])
def test_refused_naming_io7_toml_and_the_key(tmp_path: Path, table: dict[str, Any], key: str,
                                             words: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_mqtt(tmp_path / "io7.toml", table)
    assert err.value.key == key and err.value.file.name == "io7.toml"
    assert words in err.value.problem
