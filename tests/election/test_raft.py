"""master.election.raft: PySyncObj's Raft in virtual time, its journal, and the lease."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from master.election.lease import LeaseSettings
from master.election.raft import FIRST_CAMPAIGN_S, ElectionView, GroupRaft
from tests.election.vnet import Clock, Net, transport_class, virtual_pysyncobj

LEASE = LeaseSettings(lease_s=3.0)
IDS = ("io7-01", "io7-02", "io7-03")
ADDRESSES = {cid: f"{cid}:4711" for cid in IDS}


class Trio:
    """Three members on a virtual LAN, ticked every 50 ms."""

    def __init__(self, tmp: Path | None, seed: int = 1, preferred: str | None = None) -> None:
        self.clock, self.rng = Clock(), random.Random(seed)
        self.net = Net(self.clock, self.rng, (0.001, 0.01))
        self.tmp = tmp
        self.preferred = preferred
        self.nodes: dict[str, GroupRaft] = {}
        self.views: dict[str, ElectionView] = {}

    def start(self, cid: str) -> None:
        self.net.alive.add(cid)
        journal = None if self.tmp is None else str(self.tmp / f"{cid}.journal")
        self.nodes[cid] = GroupRaft(cid, ADDRESSES, lease=LEASE,
                                    transport_class=transport_class(self.net),
                                    journal_path=journal, preferred=self.preferred)

    def stop(self, cid: str) -> None:
        self.net.alive.discard(cid)
        self.nodes.pop(cid).close()
        self.views.pop(cid, None)

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / 0.05)):
            self.clock.now_s = round(self.clock.now_s + 0.05, 6)
            self.net.deliver()
            for cid, node in self.nodes.items():
                node._SyncObj__transport.refresh()
                self.views[cid] = node.tick(self.clock.now_s)

    def leaders(self) -> list[str]:
        return [cid for cid, v in self.views.items() if v.leading and v.valid_for_s > 0.0]


def test_one_member_leads_with_a_confirmed_lease_and_the_others_name_it() -> None:
    trio = Trio(None)
    with virtual_pysyncobj(trio.clock, trio.rng):
        for cid in IDS:
            trio.start(cid)
        trio.run(3.0)
        (leader,) = trio.leaders()
        assert {v.leader_id for v in trio.views.values()} == {leader}
        assert all(v.valid_for_s == 0.0 for cid, v in trio.views.items() if cid != leader)
        assert len({v.term for v in trio.views.values()}) == 1
        for cid in list(trio.nodes):
            trio.stop(cid)


def test_a_new_leader_is_confirmed_only_after_the_old_ones_last_confirmation() -> None:
    """The lease's theorem (lease.py rule 2), with the old leader cut off, not dead."""
    trio = Trio(None, seed=3)
    with virtual_pysyncobj(trio.clock, trio.rng):
        for cid in IDS:
            trio.start(cid)
        trio.run(3.0)
        (old,) = trio.leaders()
        for other in IDS:
            if other != old:
                trio.net.cut.add(frozenset((old, other)))
        old_lease = trio.nodes[old].lease
        for _ in range(100):
            trio.run(0.05)
            new = [c for c in trio.leaders() if c != old]
            if new:
                new_lease = trio.nodes[new[0]].lease
                assert new_lease.led_since_s is not None
                assert new_lease.led_since_s > old_lease.confirmed_at_s
                break
        else:
            pytest.fail("no new leader within 5 s")
        # the old leader may still hold a lease then: the new master's start-of-term hold
        # (lease_s + settle_s from led_since_s) is what makes that safe
        trio.run(3.0)
        assert trio.views[old].valid_for_s == 0.0  # cut off: it stopped issuing
        for cid in list(trio.nodes):
            trio.stop(cid)


def test_the_term_survives_a_restart_of_every_member_on_its_journal_file(tmp_path: Path) -> None:
    """A site power cut: without the journal the term would start again at 1 and the
    agents, which keep the newest term they saw, would ignore every new master."""
    trio = Trio(tmp_path)
    with virtual_pysyncobj(trio.clock, trio.rng, memory_journals=False):
        for cid in IDS:
            trio.start(cid)
        trio.run(3.0)
        (leader,) = trio.leaders()
        trio.stop(leader)  # a second election raises the term
        trio.run(3.0)
        before = max(v.term for v in trio.views.values())
        assert before >= 2
        for cid in list(trio.nodes):
            trio.stop(cid)
        assert all((tmp_path / f"{cid}.journal").exists() for cid in IDS)
        for cid in IDS:
            trio.start(cid)
        trio.run(3.0)
        assert len(trio.leaders()) == 1
        assert min(v.term for v in trio.views.values()) > before
        for cid in list(trio.nodes):
            trio.stop(cid)


def test_leadership_moves_to_the_ct_holder_and_back_after_it_was_down() -> None:
    trio = Trio(None, seed=5, preferred="io7-01")
    with virtual_pysyncobj(trio.clock, trio.rng):
        trio.start("io7-02")
        trio.start("io7-03")
        trio.run(3.0)
        (first,) = trio.leaders()
        first_term = trio.views[first].term
        assert first != "io7-01"  # the CT holder is not up yet
        trio.start("io7-01")
        trio.run(12.0)  # PREFER_AFTER_S, then the hand-over
        assert trio.leaders() == ["io7-01"]
        assert trio.views["io7-01"].term > first_term  # a new term: its own start hold
        trio.stop("io7-01")
        trio.run(4.0)
        (other,) = trio.leaders()
        assert other != "io7-01"
        trio.start("io7-01")
        trio.run(12.0)
        assert trio.leaders() == ["io7-01"]
        for cid in list(trio.nodes):
            trio.stop(cid)


@pytest.mark.parametrize("seed", range(1, 9))
def test_at_a_cold_start_the_ct_holder_wins_the_first_term(seed: int) -> None:
    """FIRST_CAMPAIGN_S: every member starting together, the CT holder leads the first
    term (no hand-over, so no second term and no second start-of-term hold)."""
    trio = Trio(None, seed=seed, preferred="io7-01")
    with virtual_pysyncobj(trio.clock, trio.rng):
        for cid in trio.rng.sample(IDS, len(IDS)):  # in any order
            trio.start(cid)
        terms = set()
        for _ in range(round(8.0 / 0.5)):  # past PREFER_AFTER_S: a hand-over would show
            trio.run(0.5)
            terms |= {v.term for cid, v in trio.views.items() if v.leading}
        assert trio.leaders() == ["io7-01"]
        assert len(terms) == 1
        for cid in list(trio.nodes):
            trio.stop(cid)


def test_without_the_ct_holder_the_others_elect_after_their_first_campaign_delay() -> None:
    trio = Trio(None, seed=3, preferred="io7-01")
    with virtual_pysyncobj(trio.clock, trio.rng):
        trio.start("io7-02")
        trio.start("io7-03")
        trio.run(FIRST_CAMPAIGN_S - 0.1)
        assert trio.leaders() == []
        trio.run(3.0)
        assert len(trio.leaders()) == 1
        for cid in list(trio.nodes):
            trio.stop(cid)


def test_members_that_cannot_form_a_group_are_refused() -> None:
    net = Net(Clock(), random.Random(1), (0.001, 0.01))
    with pytest.raises(ValueError, match="not among the group's members"):
        GroupRaft("io7-09", ADDRESSES, lease=LEASE, transport_class=transport_class(net))
    with pytest.raises(ValueError, match="share one address"):
        GroupRaft("io7-01", {"io7-01": "a:1", "io7-02": "a:1"}, lease=LEASE,
                  transport_class=transport_class(net))
    with pytest.raises(ValueError, match="preferred leader"):
        GroupRaft("io7-01", ADDRESSES, lease=LEASE, transport_class=transport_class(net),
                  preferred="io7-07")
