"""io7.toml's optional [mqtt] table (issue 14 §4): io7d's MQTT client (master/mqtt.py).

    [mqtt]                          # absent: no MQTT
    host = "10.0.0.5"               # the broker; required
    port = 8883                     # default 8883 with TLS, 1883 in plaintext
    ca_file = "/etc/io7/mqtt-ca.pem"  # TLS: the CA that signed the broker's certificate;
                                    #   default: this host's trust store
    plaintext = false               # true only on a test bench: no TLS, warned at start
    username = "io7-01"             # optional
    password_file = "/etc/io7/mqtt-password"  # its password, in a file of its own (chmod
                                    #   600); never a password in io7.toml
    topic_prefix = "io7"            # state and command topics: <prefix>/<group>/...
    discovery = true                # Home Assistant MQTT discovery messages
    discovery_prefix = "homeassistant"
    publish_interval_s = 5          # state topics at most this often (and on change)
    setpoint_max_valid_s = 3600     # the longest validity a site_limit setpoint may ask

Relative paths are read from the config file's folder. Errors are `ConfigError` naming
io7.toml and the dotted key (mqtt.port), with the allowed values.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw.tomltable import TomlTable
from master.errors import ConfigError

DEFAULT_PORT_TLS, DEFAULT_PORT_PLAIN = 8883, 1883  # IANA: secure-mqtt, mqtt
DEFAULT_PUBLISH_INTERVAL_S = 5.0  # Home Assistant's recorder keeps every state: not 1 s
PUBLISH_INTERVAL_RANGE_S = (0.1, 3600.0)
DEFAULT_MAX_VALID_S = 3600  # an hour: an energy manager renews far more often
MAX_VALID_RANGE_S = (1, 86_400)  # at most a day: a setpoint must be renewed
MAX_PASSWORD_BYTES = 65_535  # MQTT 3.1.1 §3.1.3.5: a two-byte length


class _Table(TomlTable):
    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(file=self.file, key=self.key(name), problem=problem)


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """[mqtt] as validated; `password` is read from password_file (never printed)."""

    host: str
    port: int
    tls: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    topic_prefix: str = "io7"
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    publish_interval_s: float = DEFAULT_PUBLISH_INTERVAL_S
    setpoint_max_valid_s: int = DEFAULT_MAX_VALID_S


def topic_problem(value: str) -> str | None:
    """Why `value` cannot start a topic (MQTT 3.1.1 §4.7), or None."""
    if not value or value.startswith("/") or value.endswith("/") or "//" in value:
        return "must be one or more topic levels without a leading or trailing / (io7)"
    if any(ch in "+#" or not ch.isprintable() for ch in value):
        return "may not hold + or # (wildcards) or control characters"
    return None


def read_mqtt(file: Path, data: Any) -> MqttSettings | None:
    """[mqtt] of io7.toml (`data`: the table, None when absent) as settings, None when
    absent. Raises ConfigError naming the key."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(file=file, key="mqtt", problem=f"must be a table ([mqtt]), "
                          f"not {data!r}")
    t = _Table(file, "mqtt", data)
    if "password" in data:
        raise t.error("password", "never a password in io7.toml: write it to a file only "
                      "io7d reads (chmod 600) and set password_file")
    host = t.string("host")
    plaintext = t.boolean("plaintext", False)
    port = t.raw("port", DEFAULT_PORT_PLAIN if plaintext else DEFAULT_PORT_TLS)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise t.error("port", f"{port!r} must be a whole number in [1, 65535]")
    ca_file = None
    if "ca_file" in data:
        if plaintext:
            raise t.error("ca_file", "is read only with TLS: remove it, or plaintext")
        ca_file = _path(file, t.string("ca_file"))
        if not ca_file.is_file():
            raise t.error("ca_file", f"{ca_file} is not a readable file: give the CA "
                          "certificate (PEM) that signed the broker's certificate")
    username = t.string("username") if "username" in data else None
    password = _password(t, file) if "password_file" in data else None
    prefixes = {}
    for key, default in (("topic_prefix", "io7"), ("discovery_prefix", "homeassistant")):
        value = t.string(key, default)
        problem = topic_problem(value)
        if problem:
            raise t.error(key, f"{value!r} {problem}")
        prefixes[key] = value
    discovery = t.boolean("discovery", True)
    interval = t.number("publish_interval_s", DEFAULT_PUBLISH_INTERVAL_S,
                        *PUBLISH_INTERVAL_RANGE_S, unit="s")
    lo, hi = MAX_VALID_RANGE_S
    max_valid = t.raw("setpoint_max_valid_s", DEFAULT_MAX_VALID_S)
    if isinstance(max_valid, bool) or not isinstance(max_valid, int) \
            or not lo <= max_valid <= hi:
        raise t.error("setpoint_max_valid_s", f"{max_valid!r} must be a whole number of "
                      f"seconds in [{lo}, {hi}]")
    t.done()
    return MqttSettings(host=host, port=port, tls=not plaintext, ca_file=ca_file,
                        username=username, password=password,
                        topic_prefix=prefixes["topic_prefix"], discovery=discovery,
                        discovery_prefix=prefixes["discovery_prefix"],
                        publish_interval_s=interval, setpoint_max_valid_s=max_valid)


def _path(file: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else file.parent / path


def _password(t: _Table, file: Path) -> str:
    """password_file's first line: the file must be readable by its owner alone."""
    path = _path(file, t.string("password_file"))
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise t.error("password_file", f"cannot read {path} ({why}): give the file "
                      "holding the broker password") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise t.error("password_file", f"{path} may be read by others "
                      f"({stat.filemode(mode)}): chmod 600 {path}")
    password = text.splitlines()[0] if text else ""
    if not password or len(password.encode()) > MAX_PASSWORD_BYTES:
        raise t.error("password_file", f"{path} must hold the password on its first line "
                      f"(1 to {MAX_PASSWORD_BYTES} bytes)")
    return password
