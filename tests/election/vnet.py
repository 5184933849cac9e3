"""A virtual LAN in virtual time for the group model test: links, delays, partitions.

Raft messages go through master.election.codec's bytes, exactly as on the wire, and reach
PySyncObj through its own `Transport` interface; the agents' reports and the masters'
Limits travel the same links as Python objects (the gRPC layer is tested elsewhere). A
link is up or cut (a silent partition: TCP stays up, nothing arrives) and has a delay per
message drawn from its range. PySyncObj's clock and random source are redirected to the
model's for the duration of `virtual_pysyncobj` (its module reads `monotonicTime` and
`random` as globals).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pysyncobj.syncobj as _so  # type: ignore[import-untyped]
from pysyncobj.journal import MemoryJournal as _MemoryJournal  # type: ignore[import-untyped]
from pysyncobj.transport import Transport  # type: ignore[import-untyped]

from master.election.codec import decode, encode
from master.election.flow import AppendWindow, stale, with_term
from master.election.prevote import PreVote


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


@contextmanager
def virtual_pysyncobj(clock: Clock, rng: random.Random, *,
                      memory_journals: bool = True) -> Iterator[None]:
    """PySyncObj reads `clock` and draws its election timeouts from `rng` inside, and its
    journal file is a MemoryJournal kept per path: a disk that survives a member's crash
    (the file journal's fsync-and-rename per vote costs more than the rest of a schedule;
    tests/election/test_raft.py restarts a node on a real journal file)."""
    saved = _so.monotonicTime, _so.random, _so.createJournal
    disks: dict[str | None, Any] = {}

    def journal(path: str | None) -> Any:
        return _MemoryJournal() if path is None else disks.setdefault(path, _MemoryJournal())

    _so.monotonicTime, _so.random = clock, rng
    if memory_journals:
        _so.createJournal = journal
    try:
        yield
    finally:
        _so.monotonicTime, _so.random, _so.createJournal = saved


class Net:
    """Every member's address is its charger id; messages are (deliver_at, seq, ...)."""

    def __init__(self, clock: Clock, rng: random.Random, delay_s: tuple[float, float]) -> None:
        self.clock, self.rng = clock, rng
        self.base_delay_s = delay_s
        self.cut: set[frozenset[str]] = set()
        self.slow: dict[frozenset[str], tuple[float, float]] = {}
        self.alive: set[str] = set()
        self.raft: dict[str, VirtualTransport] = {}
        self.app: dict[str, Callable[[str, Any], None]] = {}
        self._queue: list[tuple[float, int, str, str, str, Any]] = []
        self._seq = 0
        self._last: dict[tuple[str, str, str], float] = {}
        self.raft_bytes = 0

    def up(self, a: str, b: str) -> bool:
        return a in self.alive and b in self.alive and (
            a == b or frozenset((a, b)) not in self.cut)

    def send(self, kind: str, src: str, dst: str, payload: Any) -> None:
        if not self.up(src, dst):
            return
        lo, hi = self.slow.get(frozenset((src, dst)), self.base_delay_s)
        # one TCP connection per pair and kind: a message never overtakes an earlier one
        at = max(self.clock.now_s + self.rng.uniform(lo, hi), self._last.get((kind, src, dst), 0.0))
        self._last[(kind, src, dst)] = at
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, kind, src, dst, payload))

    def deliver(self) -> None:
        """Hand over every message due by now whose link is still up (a cut loses those
        in flight, as a partition does)."""
        q = self._queue
        while q and q[0][0] <= self.clock.now_s:
            _, _, kind, src, dst, payload = heapq.heappop(q)
            if not self.up(src, dst):
                continue
            if kind == "raft":
                transport = self.raft.get(dst)
                if transport is not None:
                    transport.receive(src, payload)
            else:
                handler = self.app.get(dst)
                if handler is not None:
                    handler(src, payload)


def transport_class(net: Net) -> type:
    """A PySyncObj Transport class bound to `net` (PySyncObj constructs it itself)."""

    class Bound(VirtualTransport):
        NET = net

    return Bound


def _name(address: str) -> str:
    """The member behind "name:port" (the model's addresses are charger ids)."""
    return address.rsplit(":", 1)[0]


class VirtualTransport(Transport):  # type: ignore[misc]
    """PySyncObj's transport over `Net`: peers count as connected while alive and not cut
    (a crashed peer's TCP connection would close; a silent partition keeps it open)."""

    NET: Net

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        super().__init__(syncObj, selfNode, otherNodes)
        self.node = syncObj  # its current term, for PreVote rule 5
        self.me = _name(selfNode.address)
        self.peers = {_name(n.address): n for n in otherNodes}
        self.connected: set[str] = set()
        self.window = AppendWindow()
        self.prevote = PreVote(me=self.me, members=frozenset((self.me, *self.peers)),
                               min_election_s=syncObj._getConf().raftMinTimeout)
        self.NET.raft[self.me] = self

    def refresh(self) -> None:
        """Connection events for peers that died or came back."""
        for addr, node in self.peers.items():
            alive = addr in self.NET.alive
            if alive and addr not in self.connected:
                self.connected.add(addr)
                self._onNodeConnected(node)
            elif not alive and addr in self.connected:
                self.connected.discard(addr)
                self._onNodeDisconnected(node)

    def now(self) -> float:
        return self.NET.clock.now_s

    def prevote_tick(self) -> None:
        """prevote.py rule 1, on GroupRaft's tick."""
        if self.prevote.should_ask(self.now()):
            for peer in self.peers:
                self._send_own(peer, {"type": "pre_vote", "term": 0})

    def _send_own(self, peer: str, message: dict[str, Any]) -> None:
        data = encode(message)
        self.NET.raft_bytes += len(data)
        self.NET.send("raft", self.me, peer, data)

    def send(self, node: Any, message: Any) -> bool:
        if not self.window.may_send(_name(node.address), message, self.NET.clock.now_s):
            return True
        if message.get("type") == "append_entries":
            self.prevote.heard_leader(self.now())  # a leader hears itself
        data = encode(with_term(message, self.node.raftCurrentTerm))
        self.NET.raft_bytes += len(data)
        self.NET.send("raft", self.me, _name(node.address), data)
        return True

    def receive(self, src: str, data: bytes) -> None:
        node = self.peers.get(src)
        if node is not None:
            message = decode(data)
            self.window.on_received(src, message)
            if self._prevote_received(src, message):
                self._onMessageReceived(node, message)

    def _prevote_received(self, src: str, message: dict[str, Any]) -> bool:
        """prevote.py, as the TLS transport does it; True: hand to PySyncObj."""
        if stale(message, self.node.raftCurrentTerm):
            return False
        deliver, reply = self.prevote.received(src, message, self.now(),
                                               self.node.raftCurrentTerm)
        if reply is not None:
            self._send_own(src, reply)
        return deliver

    def destroy(self) -> None:
        if self.NET.raft.get(self.me) is self:
            del self.NET.raft[self.me]
