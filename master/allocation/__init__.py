"""The allocation engine: who may draw how much, per connector, this cycle.

Pure (numpy, no I/O, no clock): the master and the agent-only mode both call
`allocate(snapshot, previous_state)`. The rules are numbered in `engine.py`.

The engine, its state and results load numpy (~17 MB resident): they are imported on
first use (PEP 562), so a process that only reads the model's types (an agent's config,
a follower io7d) does not load it.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from master.allocation.model import (
    CHARGER_LIMIT_RANGE_A,
    MIN_CURRENT_A,
    PAUSED_REASONS,
    AllocationError,
    ChargerInput,
    ConnectorInput,
    ConnectorKey,
    CtPlacement,
    CtReading,
    CtStatus,
    GroupConfig,
    InfeasibleGroupError,
    InvalidInputError,
    Mode,
    OfflineStrategy,
    Phase,
    Reason,
    Snapshot,
    check_minimise,
)

if TYPE_CHECKING:
    from master.allocation.engine import allocate
    from master.allocation.result import Allocation, ConnectorResult, PhaseResult
    from master.allocation.state import EngineState

_LAZY = {"allocate": "master.allocation.engine", "Allocation": "master.allocation.result",
         "ConnectorResult": "master.allocation.result",
         "PhaseResult": "master.allocation.result", "EngineState": "master.allocation.state"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CHARGER_LIMIT_RANGE_A",
    "MIN_CURRENT_A",
    "PAUSED_REASONS",
    "Allocation",
    "AllocationError",
    "ChargerInput",
    "ConnectorInput",
    "ConnectorKey",
    "ConnectorResult",
    "CtPlacement",
    "CtReading",
    "CtStatus",
    "EngineState",
    "GroupConfig",
    "InfeasibleGroupError",
    "InvalidInputError",
    "Mode",
    "OfflineStrategy",
    "Phase",
    "PhaseResult",
    "Reason",
    "Snapshot",
    "allocate",
    "check_minimise",
]
