"""A member that does not obey this master's Limits (issue 10: a master restarted without
its state ran term 1; every agent kept term 5 and dropped its Limits while the status
showed them online and charging). The core in virtual time, one second per cycle."""

from __future__ import annotations

from dataclasses import replace

import pytest

from master.allocation import OfflineStrategy, Reason
from master.obedience import Obedience
from master.reports import MemberReport
from tests.master.support import Rig, amps, conn_report, group, limit_of, member

A, B = member("A", connectors=1), member("B", connectors=1)
TERM = 7
LEASE_S = 3.0


def send(rig: Rig, cid: str, **state: object) -> None:
    """A default report from `cid` carrying AgentState's term fields."""
    rig.seq[cid] = rig.seq.get(cid, 0) + 1
    fields: dict[str, object] = {"term_applied": rig.control.term,
                                 "highest_term_seen": rig.control.term}
    fields.update(state)
    report = MemberReport(charger_id=cid, sequence=rig.seq[cid], received_at_s=rig.now,
                          connectors=(conn_report(1),))
    assert rig.control.report(replace(report, **fields)) is None  # type: ignore[arg-type]


def run(rig: Rig, until_s: float, **b_state: object) -> None:
    while rig.now < until_s:
        rig.now += 1
        send(rig, "A")
        send(rig, "B", **b_state)
        rig.control.cycle(rig.now)


@pytest.mark.parametrize(("row", "b_state", "refused_after_s", "says"), [
    ("obeys", {}, None, ""),
    ("agent says it refuses", {"limits_refused_reason": "failsafe 40 A above my 16 A"},
     0.0, "failsafe 40 A above my 16 A"),
    ("saw a higher term", {"highest_term_seen": 9, "term_applied": 9}, 0.0,
     "it has seen term 9, above this master's term 7, and ignores its limits"),
    ("applies another term", {"term_applied": 5, "highest_term_seen": 7}, LEASE_S,
     "it applies term 5's limits, not this master's term 7"),
    ("applies none yet (or does not say)", {"term_applied": 0, "highest_term_seen": 0},
     None, ""),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_member_that_refuses_counts_as_offline(
        row: str, b_state: dict[str, object], refused_after_s: float | None,
        says: str) -> None:
    g = group(limit_a=40.0, offline_strategy=OfflineStrategy.MINIMISE, lease_s=LEASE_S)
    rig = Rig.start(g, [A, B], term=TERM)
    run(rig, 3.0, **b_state)  # the start-of-term hold (lease 3 s, settle 0)
    first_refused = None
    for _ in range(8):
        run(rig, rig.now + 1, **b_state)
        result = rig.control.cycle(rig.now)
        view = {m.charger_id: m for m in result.status.members}["B"]
        if view.limits_refused_reason and first_refused is None:
            first_refused = rig.now
            assert says in view.limits_refused_reason
            assert not view.online
            assert view.offline_reason == "it refuses this master's limits"
            # Counted offline (Minimise: at least its 6 A fail-safe reserved; its last
            # grant while that may be in force), never as obeying.
            assert result.status.phases[0].reserved_offline_a >= 6.0
            assert limit_of(result, "B", 1).reason is Reason.OFFLINE
    if refused_after_s is None:
        assert first_refused is None, row
    else:
        assert first_refused is not None, row
        assert first_refused - 3.0 <= refused_after_s + 1.0, row


def test_obedience_rules_in_order() -> None:
    ob = Obedience()
    ob.observe(term=7, term_applied=5, highest_term_seen=5, agent_reason="", now_s=10.0)
    assert ob.refusal(term=7, now_s=12.9, lease_s=3.0) == ""  # our Limits are on the way
    assert "term 5's limits" in ob.refusal(term=7, now_s=13.0, lease_s=3.0)
    ob.observe(term=7, term_applied=7, highest_term_seen=7, agent_reason="", now_s=13.5)
    assert ob.refusal(term=7, now_s=20.0, lease_s=3.0) == ""
    ob.observe(term=7, term_applied=7, highest_term_seen=8, agent_reason="", now_s=21.0)
    assert "term 8" in ob.refusal(term=7, now_s=21.0, lease_s=3.0)
    ob.observe(term=7, term_applied=7, highest_term_seen=8, agent_reason="mine", now_s=22.0)
    assert ob.refusal(term=7, now_s=22.0, lease_s=3.0) == "mine"


def test_a_hello_at_or_above_the_term_raises_it_and_restarts_the_hold() -> None:
    """Rule 4 again: the raised term's first lease + settle hold everyone at fail-safe."""
    g = group(limit_a=40.0, offline_strategy=OfflineStrategy.MINIMISE, lease_s=LEASE_S,
              settle_s=2.0)
    rig = Rig.start(g, [A, B], term=1)
    run(rig, 10.0)
    assert amps(rig.control.cycle(rig.now)) == {("A", 1): 20.0, ("B", 1): 20.0}
    assert rig.control.raise_term(0, rig.now) is None  # below: nothing changes
    assert rig.control.raise_term(5, rig.now) == 6
    assert rig.control.term == 6 and rig.control.hold_until_s == rig.now + 5.0
    until = rig.control.hold_until_s
    while rig.now < until:
        result = rig.control.cycle(rig.now)
        assert result.term == 6 and result.holding
        assert set(amps(result).values()) == {6.0}
        run(rig, rig.now + 1)
    result = rig.control.cycle(rig.now)
    assert not result.holding and result.term == 6
    # Equal to a term this master has issued: the agent saw us (a reconnect), no raise.
    assert rig.control.raise_term(6, rig.now) is None
    assert rig.control.term == 6 and not rig.control.cycle(rig.now).holding


def test_a_hello_equal_to_a_term_not_yet_issued_raises_it() -> None:
    """A master that lost its term file starts from the number the last one used: an
    agent's Hello equal to it (before any Welcome carried it) is another master's term."""
    rig = Rig.start(group(lease_s=LEASE_S), [A, B], term=1)
    assert rig.control.needs_raise(1)
    assert rig.control.raise_term(1, rig.now) == 2
    assert not rig.control.needs_raise(2)  # issued by the Welcome that followed
    assert rig.control.raise_term(2, rig.now) is None
