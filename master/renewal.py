"""Which connected agents are sent Limits this cycle (issue 15). Pure: times are the
caller's monotonic seconds.

Every Limits carries a lease (architecture: leases, not trust), so an agent whose Limits
did not change still needs them renewed before its lease runs out. Rules:

 1. An agent is sent this cycle's Limits when they differ from the last ones queued on its
    stream (the connectors' values, the term or the fail-safe current), when nothing was
    queued on this stream yet, or when the lease left at the next cycle would be under
    `RENEW_MARGIN_CYCLES` of a cycle. So an unchanged agent is renewed every second cycle
    with the default lease of 3 cycles, with the old lease still a cycle from its end.
 2. Skipping never gives an agent more than a full send would: what it holds has the very
    values of this cycle, under a lease counted from an earlier receipt, so it ends no
    later than a fresh one would (master.control's reservations for an offline member
    assume the later end: the safe side).
 3. The lease end is counted from when the Limits were queued (the agent counts from its
    receipt, later). A Limits the stream did not write (`dropped`) or wrote with a shorter
    lease (`shortened`, an elected master's recap) is taken into account at once, and a
    new stream (`forget`) starts with a send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from master.statusview import ConnectorLimit

# Rule 1: with lease 3 cycles, a renewal goes out while 1 cycle of the old lease is left;
# 0.9, not 1, so a cycle that starts a little late renews rather than skips.
RENEW_MARGIN_CYCLES = 0.9


@dataclass(slots=True)
class _Queued:
    term: int
    failsafe_a: float
    limits: Sequence[ConnectorLimit]
    lease_end_s: float


class LimitsLedger:
    """Rules 1-3 for every stream of one master; `cycle_s` is the master's cycle."""

    def __init__(self, cycle_s: float) -> None:
        if not cycle_s > 0:
            raise ValueError(f"cycle_s {cycle_s!r} must be > 0")
        self._margin_s = (1.0 + RENEW_MARGIN_CYCLES) * cycle_s
        self._queued: dict[str, _Queued] = {}

    def due(self, charger_id: str, *, term: int, failsafe_a: float,
            limits: Sequence[ConnectorLimit], now_s: float) -> bool:
        """Rule 1: must `charger_id` be sent these Limits at `now_s`?"""
        q = self._queued.get(charger_id)
        return (q is None or q.lease_end_s - now_s < self._margin_s or q.term != term
                or q.failsafe_a != failsafe_a
                or (q.limits is not limits and q.limits != limits))

    def queued(self, charger_id: str, *, term: int, failsafe_a: float,
               limits: Sequence[ConnectorLimit], now_s: float, lease_s: float) -> None:
        """These Limits were queued on `charger_id`'s stream at `now_s` with `lease_s`."""
        self._queued[charger_id] = _Queued(term=term, failsafe_a=failsafe_a, limits=limits,
                                           lease_end_s=now_s + lease_s)

    def shortened(self, charger_id: str, lease_end_s: float) -> None:
        """Rule 3: a Limits left the stream with a lease ending at `lease_end_s` (or
        earlier); the next renewal is counted from there."""
        q = self._queued.get(charger_id)
        if q is not None and lease_end_s < q.lease_end_s:
            q.lease_end_s = lease_end_s

    def forget(self, charger_id: str) -> None:
        """Rule 3: a new stream, or a Limits the stream dropped: send at the next cycle."""
        self._queued.pop(charger_id, None)
