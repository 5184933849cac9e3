"""One table of agent.toml being read: hw.tomltable's reader, raising the agent's ConfigError.

agent.config, agent.hwsettings and agent.ocpp.settings each read their own tables of the
one file with it, so every message names the file and the dotted key the same way. The
getters added here are the agent's own (whole numbers, host:port, a disabled table);
numbers, strings and booleans are hw.tomltable's, shared with the master's config.
"""

from __future__ import annotations

import re
from typing import Any

from agent.errors import ConfigError
from hw.tomltable import REQUIRED, TomlTable

# The charger id and the OCPP charge point id: they become a URL path segment and the
# Basic auth username, so only characters that need no escaping there
ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class AgentTable(TomlTable):
    """A table of agent.toml (hw.tomltable), plus the agent's own getters."""

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(file=self.file, key=self.key(name), problem=problem)

    def required_table(self, name: str, what: str) -> AgentTable:
        table = self.table(name)
        if table is None:
            raise self.error(name, f"is required: the [{self.key(name)}] table ({what})")
        return table

    def number(self, name: str, default: Any = REQUIRED, lo: float | None = None,
               hi: float | None = None, *, unit: str = "A", why: str = "") -> float:
        """hw.tomltable's number, in amperes unless `unit` says otherwise."""
        return super().number(name, default, lo, hi, unit=unit, why=why)

    def integer(self, name: str, default: Any = REQUIRED, *, lo: int, hi: int) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.error(name, f"must be a whole number {lo}-{hi}, not {value!r}")
        return value

    def host_port(self, name: str) -> str:
        """A required "host:port" string (the master's address, a Modbus TCP gateway)."""
        value = self.string(name)
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise self.error(name, f"{value!r} must be host:port with a port 1-65535 "
                             "(e.g. \"10.0.0.10:50051\", \"[fd00::10]:50051\")")
        return value

    def skip_rest(self) -> None:
        """A disabled table: its other keys are not read, so not called unknown."""
        self.used.update(self.data)
