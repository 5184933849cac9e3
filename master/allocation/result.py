"""What the allocation engine returns: per connector a current and its reason, per phase
the accounting behind it, and the engine's memory for the next cycle.

Apart from the inputs (`model.py`) so that the memory (`state.py`), which is keyed like
the inputs, can be part of the result without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from master.allocation.model import ConnectorKey, CtStatus, Phase, Reason
from master.allocation.state import EngineState


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorResult:
    """What one connector may draw, per phase it loads, and why."""

    charger_id: str
    connector_id: int
    current_a: float
    reason: Reason
    limiting_phase: Phase | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseResult:
    """One site phase of the group: the accounting behind the allocation."""

    phase: Phase
    limit_a: float  # the limit in force (fallback limit when the CT is lost)
    ct_a: float | None  # as read, signed
    other_load_a: float  # counted against the limit (never negative)
    reserved_a: float  # what offline members may still draw
    available_a: float  # limit - other load - margin - reserved, never negative
    allocated_a: float  # sum of online connectors' allocations on this phase


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """The engine's answer, and the memory it needs next cycle (`state`).

    Per-connector results are columns (`keys`, `currents_a`, ...) in snapshot order;
    `connectors` materialises them as `ConnectorResult`s on first use.
    """

    now_s: float
    keys: tuple[ConnectorKey, ...]
    currents_a: tuple[float, ...]
    reasons: tuple[Reason, ...]
    limiting_phases: tuple[Phase | None, ...]
    phases: tuple[PhaseResult, ...]
    ct_status: CtStatus
    failsafe_current_a: float
    state: EngineState = field(repr=False)

    @cached_property
    def connectors(self) -> tuple[ConnectorResult, ...]:
        return tuple(
            ConnectorResult(charger_id=k[0], connector_id=k[1], current_a=cur, reason=why,
                            limiting_phase=ph)
            for k, cur, why, ph in zip(self.keys, self.currents_a, self.reasons,
                                       self.limiting_phases, strict=True)
        )

    @cached_property
    def _index(self) -> dict[ConnectorKey, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def result(self, charger_id: str, connector_id: int) -> ConnectorResult:
        """One connector's result; KeyError when it is not a member."""
        return self.connectors[self._index[(charger_id, connector_id)]]

    def index(self, charger_id: str, connector_id: int) -> int:
        """One connector's row in the columns; KeyError when it is not a member."""
        return self._index[(charger_id, connector_id)]

    def current_a(self, charger_id: str, connector_id: int) -> float:
        """One connector's allocation; KeyError when it is not a member."""
        return self.currents_a[self._index[(charger_id, connector_id)]]

    def by_key(self) -> dict[ConnectorKey, ConnectorResult]:
        return dict(zip(self.keys, self.connectors, strict=True))
