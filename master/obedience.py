"""Does a member obey this master's Limits? Judged from its AgentStates. Pure.

An agent ignores Limits from a term older than the newest it has seen (agent/limits.py
rule 1) and may refuse Limits it cannot honour; it keeps sending states all the same. A
member that does not obey draws its fail-safe current or what another master granted, so
the control core counts it as offline (its reservation stays) however fresh its states.

Rules (`refusal` returns the first that applies, "" when the member obeys):
 1. The agent says so (AgentState.limits_refused_reason): believed at once.
 2. It has seen a term above this master's (AgentState.highest_term_seen): it ignores
    every Limits of ours, at once.
 3. It applies another term's Limits (AgentState.term_applied) for longer than a lease:
    our Limits should have reached it by then. Shorter mismatches are normal: the states
    of the first cycle on a stream, and of the cycle after the term was raised.
    term_applied 0 ("none yet", or a peer that does not fill it) is not judged here: an
    io7 agent fills it from its first accepted Limits on, and one that refuses ours says
    so (rule 1) or has seen a higher term (rule 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Obedience:
    """One member's obedience, from its states on the current stream."""

    agent_reason: str = ""
    highest_term_seen: int = 0
    term_applied: int = 0
    mismatch_since_s: float | None = None  # first state applying another term, or None

    def observe(self, *, term: int, term_applied: int, highest_term_seen: int,
                agent_reason: str, now_s: float) -> None:
        """Take one AgentState's fields; `term` is this master's term now."""
        self.agent_reason = agent_reason
        self.highest_term_seen = highest_term_seen
        self.term_applied = term_applied
        if term_applied in (0, term):
            self.mismatch_since_s = None
        elif self.mismatch_since_s is None:
            self.mismatch_since_s = now_s

    def refusal(self, *, term: int, now_s: float, lease_s: float) -> str:
        """Why the member does not obey this master's Limits (rules 1-3), or ""."""
        if self.agent_reason:
            return self.agent_reason
        if self.highest_term_seen > term:
            return (f"it has seen term {self.highest_term_seen}, above this master's term "
                    f"{term}, and ignores its limits")
        if self.mismatch_since_s is not None:
            age = now_s - self.mismatch_since_s
            if age >= lease_s:
                applied = f"term {self.term_applied}'s" if self.term_applied else "no"
                return (f"it applies {applied} limits, not this master's term {term}, "
                        f"for {age:.1f} s (lease {lease_s:g} s)")
        return ""
