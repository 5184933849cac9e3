"""One charger's Raft node for its group: PySyncObj, ticked by its owner, with the lease.

PySyncObj (MIT, pure Python) runs the election and the log; this module only configures
it and turns its state into an `ElectionView` each tick: who leads, in which term, and for
how long this member may still issue Limits (master.election.lease). The owner calls
`tick(now_s)` from its own loop (asyncio in io7d, a virtual clock in the model test), so
no thread of PySyncObj's runs (`autoTick=False`). The transport is the owner's choice
(PySyncObj's `Transport` interface): the mTLS link between chargers, or the model test's
virtual network. PySyncObj's stock TCP transport is never used: it unpickles what arrives.

Timing (measured on this machine: a new leader 0.55 s median, 1.0 s worst after a kill):
election timeout 0.4-1.0 s, a heartbeat every 0.1 s, and a leader that hears from no
majority for 1.0 s steps down (PySyncObj's default is 30 s). Probes are sent at once
(`appendEntriesUseBatch=False`) so a confirmation is one round trip old.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, replicated  # type: ignore[import-untyped]

from master.election.lease import LeaderLease, LeaseSettings

FAIL_SUCCESS = 0  # pysyncobj.FAIL_REASON.SUCCESS
# Placement (the CT holder leads when it can): a leader that is not the preferred member
# hands over after leading this long, pausing its probes for at most HANDOVER_S (the
# target must have every entry: PySyncObj refuses a transfer otherwise), then retries
# after RETRY_S if the target did not take over (its link may be up but silent).
PREFER_AFTER_S = 5.0
HANDOVER_S = 1.5
RETRY_S = 10.0
# ... and at start: a member that is not the preferred one stands for election only
# FIRST_CAMPAIGN_S after its own start, so at a group's cold start the CT holder (when up)
# wins the first term. Without it a random member led first and handed over 5 s later: a
# second term, a second start-of-term hold for every car, and a member that keeps the
# master's modules loaded (io7d rule 3, issue 15's memory). A group whose CT holder is
# down elects FIRST_CAMPAIGN_S later; a member restarting in a running group follows the
# leader it hears and never campaigns.
FIRST_CAMPAIGN_S = 2.0


class _ReappliedEntries(logging.Filter):
    """PySyncObj logs CRITICAL "truncating already-applied log entries" whenever a follower
    receives entries it already has (a leader that sends each probe at once, then resends
    from a stale next index): it drops and re-adds the same entries of the same leader.
    Our log holds no state (empty probes) and the lease rests on terms alone, so this is
    noise that would fill an operator's log several times a second: kept at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg.startswith("truncating already-applied"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("pysyncobj.syncobj").addFilter(_ReappliedEntries())


@dataclass(frozen=True, slots=True)
class RaftTiming:
    """PySyncObj's timers, in seconds (README: the election)."""

    election_min_s: float = 0.4
    election_max_s: float = 1.0
    heartbeat_s: float = 0.1
    step_down_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.heartbeat_s < self.election_min_s <= self.election_max_s:
            raise ValueError("need 0 < heartbeat_s < election_min_s <= election_max_s, got "
                             f"{self.heartbeat_s}, {self.election_min_s}, {self.election_max_s}")
        if self.step_down_s < self.heartbeat_s:
            raise ValueError(f"step_down_s {self.step_down_s} below heartbeat_s "
                             f"{self.heartbeat_s}: a healthy leader would step down")


@dataclass(frozen=True, slots=True)
class ElectionView:
    """What one member knows after a tick."""

    member_id: str
    term: int  # the Raft term this member is in
    leader_id: str | None  # whom it follows (itself when it leads), None during elections
    leading: bool
    valid_for_s: float  # > 0 only while it leads with a confirmed lease (lease.py)


class GroupRaft(SyncObj):  # type: ignore[misc]
    """The Raft node of `member_id` among `members` (charger id -> "host:port")."""

    def __init__(self, member_id: str, members: Mapping[str, str], *, lease: LeaseSettings,
                 transport_class: type, timing: RaftTiming = RaftTiming(),
                 journal_path: str | None = None, preferred: str | None = None,
                 term_floor: int = 0) -> None:
        if member_id not in members:
            raise ValueError(f"{member_id!r} is not among the group's members {sorted(members)}")
        self.member_id = member_id
        self._by_address = {addr: cid for cid, addr in members.items()}
        if len(self._by_address) != len(members):
            raise ValueError("two members share one address: each needs its own host:port")
        conf = SyncObjConf(
            autoTick=False, raftMinTimeout=timing.election_min_s,
            raftMaxTimeout=timing.election_max_s, appendEntriesPeriod=timing.heartbeat_s,
            leaderFallbackTimeout=timing.step_down_s, appendEntriesUseBatch=False,
            dynamicMembershipChange=False, commandsWaitLeader=False, journalFile=journal_path,
            connectionTimeout=max(3.5, 2 * timing.election_max_s), connectionRetryTime=0.5)
        me = members[member_id]
        super().__init__(me, [a for c, a in members.items() if c != member_id], conf,
                         transportClass=transport_class)
        self.lease = LeaderLease(lease)
        if term_floor > self.raftCurrentTerm:  # io7d: above every term its agent has seen
            self._SyncObj__setCurrentTerm(term_floor, None)  # persisted in the journal
        if preferred is not None and preferred not in members:
            raise ValueError(f"preferred leader {preferred!r} is not a member")
        self._preferred = None if preferred in (None, member_id) else members[preferred]
        clock = getattr(self.transport, "now", None)
        self._campaign_from: float | None = (
            None if self._preferred is None or clock is None else clock() + FIRST_CAMPAIGN_S)
        self._handover_until: float | None = None
        self._next_handover_s = 0.0
        self._transfer_sent = False

    @replicated  # type: ignore[untyped-decorator]
    def _probe(self) -> None:
        """An empty entry: committing it confirms the leadership (lease.py rule 2)."""

    def _SyncObj__connectedToAnyone(self) -> bool:
        """PySyncObj's election condition (its only caller), gated by PreVote
        (prevote.py rule 3): connected to a peer AND a majority lost the leader too."""
        connected: bool = SyncObj._SyncObj__connectedToAnyone(self)
        first = getattr(self, "_campaign_from", None)
        if first is not None:  # placement at start (FIRST_CAMPAIGN_S)
            if self.transport.now() < first:
                return False
            self._campaign_from = None
        prevote = getattr(self.transport, "prevote", None)
        return connected and (prevote is None or prevote.may_campaign(self.transport.now()))

    def tick(self, now_s: float) -> ElectionView:
        """Run PySyncObj's timers and handlers once, the pre-vote round, then the lease's
        rules."""
        self._onTick(0)
        ask = getattr(self.transport, "prevote_tick", None)
        if ask is not None:
            ask()
        term: int = self.raftCurrentTerm
        leading: bool = self._isLeader()
        self.lease.on_leading(term if leading else None, now_s)
        handing_over = self._hand_over(leading, now_s)
        if not handing_over and self.lease.probe_due(now_s):
            def done(_result: Any, error: int, term: int = term, sent: float = now_s) -> None:
                if error == FAIL_SUCCESS and self.raftCurrentTerm == term:
                    self.lease.on_committed(term, sent)
            self._probe(callback=done)
        leader = self._getLeader()
        leader_id = None if leader is None else self._by_address.get(leader.address)
        return ElectionView(member_id=self.member_id, term=term, leader_id=leader_id,
                            leading=leading, valid_for_s=self.lease.valid_for_s(now_s))

    def _hand_over(self, leading: bool, now_s: float) -> bool:
        """Placement: True while this leader pauses its probes to hand over to the
        preferred member (the CT holder). Safety does not depend on it: the new leader
        starts with the start-of-term hold whatever happens here."""
        target = self._preferred
        if not leading or target is None:
            self._handover_until = None
            return False
        led = self.lease.led_since_s
        if self._handover_until is None:
            if led is None or now_s < led + PREFER_AFTER_S or now_s < self._next_handover_s:
                return False
            # getStatus builds a dict of everything: asked only once a hand-over is due
            if self.getStatus().get(f"partner_node_status_server_{target}") != 2:
                return False
            # never pause probes so long that the lease drops under its minimum
            s = self.lease.settings
            pause = max(0.2, min(HANDOVER_S, s.lease_s - s.min_valid_s - 2 * s.probe_every_s))
            self._handover_until, self._transfer_sent = now_s + pause, False
        if now_s >= self._handover_until:
            self._handover_until, self._next_handover_s = None, now_s + RETRY_S
            return False
        if not self._transfer_sent:
            def sent(_result: Any, error: int) -> None:
                self._transfer_sent = error == FAIL_SUCCESS
            self.transferLeadership(node=target, callback=sent)
        return True

    @property
    def transport(self) -> Any:
        """The transport PySyncObj built (tlstransport.TlsTransport in io7d)."""
        return self._SyncObj__transport

    def close(self) -> None:
        """Stop: the transport closes; PySyncObj's wake-up pipe is closed too (it leaks it)."""
        self.destroy()
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        for name in ("_PipeNotifier__pipeR", "_PipeNotifier__pipeW"):
            fd = getattr(notifier, name, None)
            if isinstance(fd, int):
                with contextlib.suppress(OSError):
                    os.close(fd)
