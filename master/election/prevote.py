"""PreVote: a member calls an election only when a majority has lost the leader too. Pure.

PySyncObj has no PreVote (Ongaro's thesis, 9.6): a member that misses a few heartbeats
times out and starts an election in a higher term, and the healthy leader must step down.
Behind a flapping link (measured here: 30 % frame loss and 300 ms each way, where TCP
stalls for seconds) one member did so again and again: 45 terms in 30 s, and every new
term starts with the start-of-term hold, so the whole car park sat on its fail-safe
current. Our transports run the pre-vote round beside PySyncObj's messages:

 1. A member that has not heard from a leader for `min_election_s` (no append_entries
    received, none sent as leader) asks every peer `pre_vote`, at most every `ask_every_s`.
 2. A peer grants it when it has not heard from a leader for `min_election_s` either.
 3. PySyncObj may start an election only when grants from a majority (itself included)
    arrived within the last `grant_valid_s` (raft.GroupRaft gates its election check on
    `may_campaign`); a member cut off from a healthy majority therefore keeps its term
    and rejoins as a follower when its link heals, instead of deposing the leader.
 4. Placement: a member that received timeout_now from its leader (a hand-over, raft.py)
    may campaign for `transfer_s` without a pre-vote, as the thesis's transfer does.
 5. A member in a later term than the leader it hears (a hand-over target whose votes
    were lost, or a term raised at start: io7d's term_floor) ignores that leader's
    messages (Raft), so they do not count as hearing it, and it may campaign at once:
    only an election brings the group up to its term; otherwise it would stay out.
Only liveness depends on this: an election still needs Raft's majority of votes, and the
lease (lease.py) does not rest on when elections happen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PreVote:
    """Rules 1-4 for one member among `members` (its own id included)."""

    me: str
    members: frozenset[str]
    min_election_s: float
    ask_every_s: float = 0.1
    grant_valid_s: float = 1.0
    transfer_s: float = 2.0
    heard_s: float = -math.inf
    _asked_s: float = -math.inf
    _transfer_until_s: float = -math.inf
    _grants: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.me not in self.members:
            raise ValueError(f"{self.me!r} is not among the members {sorted(self.members)}")

    def heard_leader(self, now_s: float) -> None:
        """An append_entries arrived from a leader, or this member sent one as leader."""
        self.heard_s = now_s
        self._grants.clear()

    def on_timeout_now(self, now_s: float) -> None:
        self._transfer_until_s = now_s + self.transfer_s

    def should_ask(self, now_s: float) -> bool:
        """Rule 1: True when this member should send `pre_vote` to every peer now."""
        if now_s - self.heard_s < self.min_election_s or now_s - self._asked_s < self.ask_every_s:
            return False
        self._asked_s = now_s
        return True

    def grant(self, now_s: float) -> bool:
        """Rule 2: the answer to a peer's pre_vote."""
        return now_s - self.heard_s >= self.min_election_s

    def on_reply(self, peer: str, granted: bool, now_s: float) -> None:
        if peer in self.members and peer != self.me:
            if granted:
                self._grants[peer] = now_s
            else:
                self._grants.pop(peer, None)

    def received(self, peer: str, message: dict[str, Any], now_s: float,
                 term: int) -> tuple[bool, dict[str, Any] | None]:
        """Every message a transport receives from `peer` while this member is in `term`:
        (hand it to PySyncObj?, the reply to send back, if any)."""
        kind = message["type"]
        if kind == "pre_vote":
            return False, {"type": "pre_vote_reply", "term": 0, "granted": self.grant(now_s)}
        if kind == "pre_vote_reply":
            self.on_reply(peer, message["granted"], now_s)
            return False, None
        if kind == "append_entries":
            if message["term"] >= term:
                self.heard_leader(now_s)
            else:  # rule 5
                self._transfer_until_s = max(self._transfer_until_s, now_s + self.ask_every_s)
        elif kind == "timeout_now":
            self.on_timeout_now(now_s)
        return True, None

    def may_campaign(self, now_s: float) -> bool:
        """Rules 3-4: may PySyncObj start an election now?"""
        if now_s < self._transfer_until_s:
            return True
        fresh = sum(1 for t in self._grants.values() if now_s - t <= self.grant_valid_s)
        return 2 * (fresh + 1) > len(self.members)
