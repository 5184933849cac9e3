"""Reading one table of a TOML config file, with errors naming the file and dotted key.

It lives in hw/ because hw is the bottom layer both the master and the agent may import
(like logconfig); it knows nothing of either config. Each config module subclasses
`TomlTable`: `error` says which ConfigError it raises, and getters whose messages are
its own (phases, enums) are added there. Numbers are read here, once for both configs, so
nan and inf get the same answer everywhere: "must be a finite number in [lo, hi]".
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

REQUIRED: Any = object()  # a default meaning "this key must be present"


class TomlTable(ABC):
    """One TOML table being read: typed getters that raise the config's error with the
    dotted key, and `done()` that refuses keys nobody asked for (a typo must not fall
    back to a default silently)."""

    def __init__(self, file: Path, prefix: str, data: Mapping[str, Any]) -> None:
        self.file, self.prefix, self.data = file, prefix, data
        self.used: set[str] = set()

    @abstractmethod
    def error(self, name: str, problem: str) -> Exception:
        """The config error for key `name` of this table."""

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def raw(self, name: str, default: Any = REQUIRED) -> Any:
        self.used.add(name)
        if name in self.data:
            return self.data[name]
        if default is REQUIRED:
            raise self.error(name, "is required")
        return default

    def table(self, name: str) -> Self | None:
        value = self.raw(name, None)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(name, f"must be a table ([{self.key(name)}]), not {value!r}")
        return type(self)(self.file, self.key(name), value)

    def string(self, name: str, default: Any = REQUIRED, allowed: tuple[str, ...] = ()) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value:
            raise self.error(name, f"must be a non-empty string, not {value!r}")
        if allowed and value not in allowed:
            raise self.error(name, f"{value!r} is not one of {list(allowed)}")
        return value

    def number(self, name: str, default: Any = REQUIRED, lo: float | None = None,
               hi: float | None = None, *, unit: str = "", why: str = "") -> float:
        """A TOML integer or float, as float, finite and within [lo, hi] (`unit` and `why`
        go into the message). Without a range, only that it is a number: the caller hands
        it to a validator that owns the range and refuses nan and inf itself
        (master.allocation.GroupConfig)."""
        value = self.raw(name, default)
        span = "" if lo is None or hi is None else (
            f"[{lo:g}, {hi:g}]{' ' + unit if unit else ''}{f' ({why})' if why else ''}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"must be a number{' in ' + span if span else ''}, "
                             f"not {value!r}")
        if lo is None or hi is None:
            return float(value)
        if not math.isfinite(value):
            raise self.error(name, f"must be a finite number in {span}, not {value!r}")
        if not lo <= value <= hi:
            raise self.error(name, f"{value!r} is outside the allowed range {span}")
        return float(value)

    def boolean(self, name: str, default: Any = REQUIRED) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, not {value!r}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], f"unknown key; allowed here: {sorted(self.used)}")
