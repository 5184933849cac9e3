"""The agent's errors, split by blame (style.md section 5), like the master's.

- `ConfigError`: fix your file. Names the file, the dotted key (`charger.current_limit_a`)
  and the allowed range or what to do. Raised at start-up only, never in a control cycle.
- `PeerError`: the master (or, later, the CSMS) sent something the agent cannot accept,
  e.g. Limits for a connector this charger does not have. The shell drops that message
  (the lease then runs out and the connector falls back to its fail-safe current) and
  logs the problem; it never crashes the control loop.
- `IllegalTransitionError` (in `agent.transitions`): the shell asked the connector state
  machine for a transition its table does not have; a bug in the caller, the state is
  left unchanged.

Hardware faults stay `hw.errors.DeviceError` (re-exported here so agent code can catch
one name); the connector machine receives them as fault *data*, never as exceptions.
"""

from __future__ import annotations

from pathlib import Path

from hw.errors import DeviceError

__all__ = ["AgentError", "ConfigError", "DeviceError", "PeerError"]


class AgentError(Exception):
    """Base of the agent's own errors."""


class ConfigError(AgentError, ValueError):
    """The agent's config file is missing, unreadable or holds a value out of range.

    `file` is the config file, `key` the dotted TOML key ("" for the file as a whole),
    `problem` what is wrong and what is allowed.
    """

    def __init__(self, *, file: Path, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else str(file)
        super().__init__(f"{where}: {problem}")


class PeerError(AgentError):
    """A peer (the master, the CSMS) sent something that cannot be accepted."""

    def __init__(self, *, peer: str, problem: str) -> None:
        self.peer = peer
        self.problem = problem
        super().__init__(f"{peer}: {problem}")
