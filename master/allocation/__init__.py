"""The allocation engine: who may draw how much, per connector, this cycle.

Pure (numpy, no I/O, no clock): the master and the agent-only mode both call
`allocate(snapshot, previous_state)`. The rules are numbered in `engine.py`.
"""

from master.allocation.engine import allocate
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
from master.allocation.result import Allocation, ConnectorResult, PhaseResult
from master.allocation.state import EngineState

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
