"""One append_entries in flight per follower: the transport's flow control. Pure.

PySyncObj's leader advances a follower's next index optimistically with every
append_entries it sends, and a follower that lacks the entry before a message answers
"reset to my log's end". When a follower comes back with a diverged tail (a healed
partition) while more than one message is in flight (a probe sent at once plus the
heartbeat, or a slow link), the answers to the optimistic messages undo the leader's
step back on each round: the follower never catches up, nothing commits, and no lease
is confirmed while a majority is up (found by tests/election's group model, seed 32).

So the transport sends a follower the next append_entries only when the previous one was
answered (next_node_idx) or `timeout_s` has passed (a lost message, or a slow link); the
others are dropped, which Raft tolerates: the leader's next heartbeat is built from the
corrected index and carries every entry from there. `timeout_s` (0.2 s, half the shortest
election timeout) keeps a heartbeat reaching a follower behind a slow link often enough
that it does not call an election: waiting for each answer there (one message per 0.6 s
round trip at 300 ms each way) made such a member time out again and again, and each of
its elections started a new term, that is a start-of-term hold for the whole group.
"""

from __future__ import annotations

from typing import Any


class AppendWindow:
    """Stop-and-wait per peer for append_entries; every other message passes."""

    def __init__(self, timeout_s: float = 0.2) -> None:
        if not timeout_s > 0.0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self._sent_at: dict[str, float] = {}
        self.dropped = 0

    def may_send(self, peer: str, message: dict[str, Any], now_s: float) -> bool:
        """True: send it (and it is now the one in flight); False: drop it."""
        if message.get("type") != "append_entries":
            return True
        sent = self._sent_at.get(peer)
        if sent is not None and now_s - sent < self.timeout_s:
            self.dropped += 1
            return False
        self._sent_at[peer] = now_s
        return True

    def on_received(self, peer: str, message: dict[str, Any]) -> None:
        """A follower's answer frees its window."""
        if message.get("type") == "next_node_idx":
            self._sent_at.pop(peer, None)


def with_term(message: dict[str, Any], term: int) -> dict[str, Any]:
    """A follower's next_node_idx carries no term in PySyncObj: the transport adds the
    sender's, so that a reply delayed across terms (a stalled stream) cannot raise a
    leader's match index for entries another leader has since replaced."""
    if message.get("type") == "next_node_idx":
        return {**message, "term": term}
    return message


def stale(message: dict[str, Any], term: int) -> bool:
    """True for a next_node_idx from another term than ours (drop it); the added term is
    removed before PySyncObj sees the message."""
    if message.get("type") != "next_node_idx" or "term" not in message:
        return False
    return bool(message.pop("term") != term)
