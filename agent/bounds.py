"""What this agent accepts from any master: its own bounds, checked before it obeys.

A master is trusted with the group's limits, not with the charger's safety settings. One
Welcome from a fake or misconfigured master used to set an agent's fail-safe to 80 A; now
the agent's own configuration bounds what a Welcome or Limits may set (issue 10):

1. Term: a term older than the newest seen is refused.
2. Fail-safe current: 0, or 6 A (IEC 61851-1 Table A.7: nothing in (0, 6) A) up to the
   lower of `max_failsafe_a` and the Charger Current Limit (manual 6.3).
3. Lease: within [`min_lease_s`, `max_lease_s`].

A refused message changes nothing; the `Refusal` says which field, its value and the bound,
for the warning log and AgentState.limits_refused_reason. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hw.pilot import MAX_CURRENT_A, MIN_CURRENT_A

MAX_LEASE_S = 3600.0  # a lease beyond an hour is a master bug, not a setting


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkBounds:
    """The agent's own bounds on a master's fail-safe current (A) and lease (s).

    The defaults only refuse the impossible; the agent's config ([master] max_failsafe_a,
    min_lease_s, max_lease_s) gives the safe ones."""

    max_failsafe_a: float = MAX_CURRENT_A
    min_lease_s: float = 0.001  # Limits.valid_for_ms counts whole ms
    max_lease_s: float = MAX_LEASE_S

    def __post_init__(self) -> None:
        fs = self.max_failsafe_a
        if not (fs == 0.0 or MIN_CURRENT_A <= fs <= MAX_CURRENT_A):
            raise ValueError(f"max_failsafe_a = {fs} A must be 0 or "
                             f"{MIN_CURRENT_A:g}-{MAX_CURRENT_A:g} A")
        lo, hi = self.min_lease_s, self.max_lease_s
        if not (math.isfinite(lo) and 0.0 < lo <= MAX_LEASE_S):
            raise ValueError(f"min_lease_s = {lo} s must be in (0, {MAX_LEASE_S:g}] s")
        if not (math.isfinite(hi) and lo <= hi <= MAX_LEASE_S):
            raise ValueError(f"max_lease_s = {hi} s must be in [min_lease_s = {lo:g}, "
                             f"{MAX_LEASE_S:g}] s")


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """Why a Welcome or Limits was refused: the field ("term", "failsafe_current_a",
    "lease_s", or what the shell could not parse), its value and a one-line reason that
    names the bound."""

    field: str
    value: float
    reason: str
    bound: str = ""


def check_master_settings(bounds: LinkBounds, *, charger_limit_a: float, last_seen_term: int,
                          term: int, failsafe_a: float, lease_s: float) -> Refusal | None:
    """Rules 1-3 for one Welcome or Limits: the first one broken, or None to obey."""
    if term < last_seen_term:
        return Refusal(field="term", value=float(term), bound=f">= {last_seen_term}",
                       reason=f"term {term} is older than term {last_seen_term} seen before")
    top = min(bounds.max_failsafe_a, charger_limit_a)
    fs_bound = "0 A only" if top < MIN_CURRENT_A else f"0 or {MIN_CURRENT_A:g}-{top:g} A"
    fs_ok = math.isfinite(failsafe_a) and (
        failsafe_a == 0.0 or MIN_CURRENT_A <= failsafe_a <= top)
    if not fs_ok:
        return Refusal(field="failsafe_current_a", value=failsafe_a, bound=fs_bound,
                       reason=f"fail-safe current {failsafe_a:g} A is outside this agent's "
                              f"bound ({fs_bound})")
    lease_bound = f"{bounds.min_lease_s:g}-{bounds.max_lease_s:g} s"
    if not (math.isfinite(lease_s) and bounds.min_lease_s <= lease_s <= bounds.max_lease_s):
        return Refusal(field="lease_s", value=lease_s, bound=lease_bound,
                       reason=f"lease {lease_s:g} s is outside this agent's bound "
                              f"({lease_bound})")
    return None
