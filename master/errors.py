"""The master's errors, split by blame (style.md section 5).

- `ConfigError`: fix your file. Names the file, the dotted key (`group.limit_a`) and the
  allowed range or what to do. Raised at start-up only, never during a control cycle.
- `PeerError`: an agent or an admin client sent something the master cannot accept (a
  Hello that does not fit the group, a report for an unknown connector). The service
  refuses that request or stream; the rest of the group carries on.
- `RequestError`: the subset of `PeerError` raised by a GroupAdmin request with an
  out-of-range argument (SetGroupLimit); the service answers INVALID_ARGUMENT.

Hardware faults are `hw.errors.DeviceError`; the allocation engine's own are
`master.allocation.AllocationError`.
"""

from __future__ import annotations

from pathlib import Path


class MasterError(Exception):
    """Base of the master's own errors."""


class ConfigError(MasterError, ValueError):
    """The master's config file is missing, unreadable or holds a value out of range.

    `file` is the config file, `key` the dotted TOML key ("" for the file as a whole),
    `problem` what is wrong and what is allowed.
    """

    def __init__(self, *, file: Path, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else str(file)
        super().__init__(f"{where}: {problem}")


class PeerError(MasterError):
    """An agent or client sent something that cannot be accepted; `peer` says who."""

    def __init__(self, *, peer: str, problem: str) -> None:
        self.peer = peer
        self.problem = problem
        super().__init__(f"{peer}: {problem}")


class RequestError(PeerError, ValueError):
    """A GroupAdmin request asked for a value out of range."""
