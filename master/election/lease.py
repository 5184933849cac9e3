"""The leader lease: how long a Raft leader may still issue Limits. Pure.

Raft's own "I am leader" (`_isLeader()` in PySyncObj) is not a right to allocate: a leader
cut off from its followers believes it leads until `leaderFallbackTimeout` has passed, while
the majority may already have elected another (measured: up to 0.46 s with a 1 s fallback,
29 s with the default). The lease rests on **committed probes** instead:

 1. The leader appends a probe entry every `probe_every_s` and notes the time `s` it sent it.
 2. When that entry commits in the same term, a majority accepted it, each member after `s`.
    A member that has adopted a later term refuses entries of this one, and any later leader
    needs a majority's votes, which meets that majority: every later leader was elected
    after `s`, whatever the network's delays. So `confirmed_at = s` (the newest such).
 3. A Limits lease issued at `now` ends at most at `confirmed_at + lease_s`
    (`valid_for_s`): no lease of this term outlives its confirmation by more than
    `lease_s`, and a new master, elected after `confirmed_at`, holds every member at its
    fail-safe current for `lease_s + settle_s` from its own first confirmation (the
    start-of-term hold of master.control rule 4): every old lease has run out by then.
 4. Below `min_valid_s` (normally one cycle) the leader issues nothing: a minority side
    stops within `lease_s - min_valid_s` of its last confirmation, and its agents fall to
    their fail-safe current when their leases run out.

Only durations on one clock are compared (the leader's monotonic clock); agents count a
lease from its receipt on their own. No synchronised wall clock is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """The group's timing: Limits lease, the shortest lease worth issuing, probe period."""

    lease_s: float
    min_valid_s: float = 1.0
    probe_every_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 < self.min_valid_s < self.lease_s:
            raise ValueError(f"min_valid_s {self.min_valid_s} must be in (0, lease_s "
                             f"{self.lease_s}): a lease shorter than that is never issued")
        if not 0.0 < self.probe_every_s < self.lease_s - self.min_valid_s:
            raise ValueError(f"probe_every_s {self.probe_every_s} must be below lease_s - "
                             f"min_valid_s ({self.lease_s - self.min_valid_s:g} s), or a "
                             "healthy leader would stop issuing between two probes")


class LeaderLease:
    """Rules 1-4 for one member. `term` is the Raft term it believes it leads, or None."""

    def __init__(self, settings: LeaseSettings) -> None:
        self.settings = settings
        self.term: int | None = None
        self.confirmed_at_s = -math.inf
        self.led_since_s: float | None = None  # first confirmation of this term
        self._next_probe_s = -math.inf

    def on_leading(self, term: int | None, now_s: float) -> None:
        """What Raft says this member is now: leader of `term`, or not leading (None).
        A new term forgets every confirmation of the old one."""
        if term != self.term:
            self.term = term
            self.confirmed_at_s = -math.inf
            self.led_since_s = None
            self._next_probe_s = now_s

    def probe_due(self, now_s: float) -> bool:
        """Rule 1: True when a probe should be sent now (the caller then sends it and
        passes `now_s` back to `on_committed` when, and if, it commits)."""
        if self.term is None or now_s < self._next_probe_s:
            return False
        self._next_probe_s = now_s + self.settings.probe_every_s
        return True

    def on_committed(self, term: int, sent_at_s: float) -> None:
        """Rule 2: the probe sent at `sent_at_s` in `term` committed."""
        if term == self.term and sent_at_s > self.confirmed_at_s:
            self.confirmed_at_s = sent_at_s
            if self.led_since_s is None:
                self.led_since_s = sent_at_s

    def valid_for_s(self, now_s: float) -> float:
        """Rules 3-4: the lease to put on Limits sent now; 0.0 means issue nothing."""
        if self.term is None:
            return 0.0
        left = min(self.settings.lease_s, self.confirmed_at_s + self.settings.lease_s - now_s)
        return left if left >= self.settings.min_valid_s else 0.0
