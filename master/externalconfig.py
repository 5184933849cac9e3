"""The master's settings for external site limits (issue 12 §4), read from master.toml.

    [group]
    local_controller = "io7-01"   # the charger whose ChargePointMaxProfile (connector 0)
                                  # bounds the whole group (OCPP Local Controller); none:
                                  # the back office cannot limit the group

    [ems]                         # a building energy manager over Modbus TCP; off unless
    enabled = true                #   enabled (master/emsserver.py, README register map)
    listen = "10.0.0.10:5020"     # the address to bind, host:port (502 needs root or
                                  #   CAP_NET_BIND_SERVICE); no default: say which network
    validity_s = 60               # the validity register at start: a write without its
                                  #   own validity lasts this long (Alfen's 60 s)

Errors are `ConfigError` naming the file and the dotted key, like the rest of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.tomltable import TomlTable

MAX_CHARGER_ID_CHARS = 64  # as the agent's [charger] id (master.wire)
DEFAULT_VALIDITY_S = 60  # Alfen's Modbus slave setpoint validity: 60 s
VALIDITY_RANGE_S = (1, 65535)  # one uint16 register


@dataclass(frozen=True, slots=True, kw_only=True)
class EmsSettings:
    """Where the energy manager's Modbus TCP server listens, and its default validity."""

    host: str
    port: int
    validity_s: int = DEFAULT_VALIDITY_S

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"


def read_local_controller(group: TomlTable) -> str | None:
    """[group] local_controller: a charger id (one printable word), or None."""
    value = group.raw("local_controller", None)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_CHARGER_ID_CHARS or any(
            not ch.isprintable() or ch.isspace() for ch in value):
        raise group.error("local_controller", f"{value!r} is not a charger id: the [charger] "
                          f"id of one member (1-{MAX_CHARGER_ID_CHARS} characters, no spaces)")
    return value


def read_ems(t: TomlTable | None) -> EmsSettings | None:
    """[ems] as settings, None when absent or not enabled."""
    if t is None:
        return None
    if not t.boolean("enabled", False):
        t.used.update(t.data)  # a disabled server's keys are not read: not unknown either
        return None
    listen = t.string("listen")
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise t.error("listen", f"{listen!r} must be host:port, e.g. \"10.0.0.10:5020\" "
                      "(the address of the network the energy manager is on; port 0: any)")
    validity = t.raw("validity_s", DEFAULT_VALIDITY_S)
    lo, hi = VALIDITY_RANGE_S
    if isinstance(validity, bool) or not isinstance(validity, int) or not lo <= validity <= hi:
        raise t.error("validity_s", f"{validity!r} must be a whole number of seconds in "
                      f"[{lo}, {hi}]")
    t.done()
    return EmsSettings(host=host, port=int(port), validity_s=validity)
