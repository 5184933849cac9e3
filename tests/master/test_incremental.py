"""The incremental cycle gives what a full rebuild gives (issue 15, master.control rule 7).

Two `GroupControl`s see the same randomised run, many cycles long: members joining (with a
new Hello now and then), leaving, falling silent past their lease, being removed by a
rebuild; reports that change, repeat exactly, or are refused; CT samples that change,
repeat or fail; the group limit changing. One is fed as the master's streams feed it (one
`master.wire.ReportDecoder` per stream) and keeps its caches; the other decodes every
report afresh and drops every cache before each cycle (`forget_caches`). Every cycle
their limits, allocations and status views must be equal: a cache that is not
invalidated when its input changes shows as a difference (checked by breaking
`GroupControl._charger`'s and `ReportDecoder`'s invalidation: the test fails).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from master import wire
from master.allocation import Mode, OfflineStrategy, Phase
from master.control import CycleResult, GroupControl
from master.errors import PeerError, RequestError
from master.membership import Member, MemberConnector
from protos.io7.cluster.v1 import cluster_pb2 as pb
from tests.master.support import group

WIRINGS = ((Phase.L1, Phase.L2, Phase.L3), (Phase.L2, Phase.L3, Phase.L1),
           (Phase.L1, None, None), (Phase.L3, None, None))
IDS = tuple(f"io7-{k}" for k in range(6))


def hello(rng: random.Random, cid: str) -> Member:
    """A member's Hello: one or two connectors, a wiring and a hard max each."""
    return Member(charger_id=cid, group="garage",
                  charger_current_limit_a=rng.choice((16.0, 32.0, 63.0)),
                  connectors=tuple(MemberConnector(connector_id=n, wiring=rng.choice(WIRINGS),
                                                   hard_max_a=rng.choice((16.0, 32.0)))
                                   for n in range(1, rng.choice((1, 2, 2)) + 1)))


def connector_state(rng: random.Random, n: int, bad: bool) -> pb.ConnectorState:
    """One connector's state: idle, plugged or charging; `bad` puts a NaN in it."""
    kind = rng.choice(("idle", "plugged", "charging", "charging"))
    draw = 0.0 if kind != "charging" else rng.choice((6.0, 9.7, 15.9, 16.0, 31.8))
    c = pb.ConnectorState(
        connector_id=n, pilot_state=pb.PILOT_STATE_C if draw else pb.PILOT_STATE_B,
        status=pb.CONNECTOR_STATUS_CHARGING if draw else pb.CONNECTOR_STATUS_AVAILABLE,
        current_a=pb.LineValues(l1=draw, l2=draw * rng.choice((0, 1)), l3=draw),
        voltage_v=pb.LineValues(l1=230.0, l2=231.0, l3=229.0),
        session_energy_wh=rng.choice((0.0, 500.0, 12000.0, rng.uniform(0, 5e4))),
        phases_in_use=rng.choice((0, 1, 5, 7)) if draw else 0,
        offered_current_a=rng.choice((0.0, 6.0, 16.0)),
        max_current_a=rng.choice((16.0, 32.0)), wants_power=kind != "idle",
        meter_ok=rng.random() > 0.05)
    if rng.random() < 0.5:
        c.energy_import_wh = rng.uniform(0, 1e6)
    if bad:
        c.current_a.l2 = float("nan")
    return c


class Stream:
    """One member's current stream: its Hello, decoder, last state and sequence."""

    def __init__(self, member: Member) -> None:
        self.member, self.decoder, self.seq = member, wire.ReportDecoder(), 0
        self.last: pb.AgentState | None = None


def same_cycle(a: CycleResult, b: CycleResult) -> None:
    assert a.limits == b.limits
    assert (a.term, a.cycle, a.holding, a.lease_ms) == (b.term, b.cycle, b.holding, b.lease_ms)
    if a.allocation is None or b.allocation is None:
        assert a.allocation is b.allocation is None
    else:
        assert a.allocation.keys == b.allocation.keys
        assert a.allocation.currents_a == b.allocation.currents_a
        assert a.allocation.reasons == b.allocation.reasons
        assert a.allocation.limiting_phases == b.allocation.limiting_phases
        assert a.allocation.phases == b.allocation.phases


def run(seed: int, cycles: int) -> int:
    """The randomised run of `seed`; returns how many cycles compared their status."""
    rng = random.Random(seed)
    limit = rng.choice((32.0, 63.0))
    g = group(mode=rng.choice((Mode.STATIC, Mode.DYNAMIC)), limit_a=limit,
              fallback_limit_a=limit / 2,
              offline_strategy=rng.choice((OfflineStrategy.MAXIMISE, OfflineStrategy.ZERO)),
              settle_s=rng.choice((0.0, 2.0)), lease_s=3.0, min_pause_s=0.0)
    known = [hello(rng, cid) for cid in IDS[:3]]
    inc = GroupControl(group=g, term=5, members=known, now_s=0.0)
    ref = GroupControl(group=g, term=5, members=known, now_s=0.0)
    streams: dict[str, Stream] = {}
    compared = 0
    now = 0.0
    for _ in range(cycles):
        now += 1.0
        for cid in IDS:
            s = streams.get(cid)
            roll = rng.random()
            if s is None and roll < 0.25:  # joins or comes back, maybe with a new Hello
                m = next((k for k in known if k.charger_id == cid), None)
                if m is None or rng.random() < 0.3:
                    m = hello(rng, cid)
                outcomes = []
                for c in (inc, ref):
                    try:
                        c.member_connected(m, now, address="10.0.0.1")
                        outcomes.append(True)
                    except PeerError:
                        outcomes.append(False)
                assert outcomes[0] == outcomes[1]
                if outcomes[0]:
                    streams[cid] = Stream(m)
                    known = [k for k in known if k.charger_id != cid] + [m]
            elif s is not None and roll < 0.06:  # its stream drops
                inc.member_disconnected(cid, now)
                ref.member_disconnected(cid, now)
                del streams[cid]
            elif s is not None and roll < 0.85:  # reports: repeated, changed, or bad
                s.seq += 1
                if s.last is not None and rng.random() < 0.5:
                    state = pb.AgentState()
                    state.CopyFrom(s.last)  # the same values again
                else:
                    state = pb.AgentState(charger_id=cid, connectors=[
                        connector_state(rng, mc.connector_id, rng.random() < 0.03)
                        for mc in s.member.connectors])
                    if rng.random() < 0.03:  # an unknown connector
                        state.connectors.add(connector_id=9)
                state.sequence, state.term_applied = s.seq, 5
                s.last = state
                at = now - rng.random() * 0.5
                assert inc.report(s.decoder.decode(state, at)) == \
                    ref.report(wire.report_from_state(state, at))
        if rng.random() < 0.7:  # a CT sample: repeated, changed, or failed
            ct = {p: rng.choice((0.0, 5.0, 12.5, -3.0)) for p in Phase}
            if rng.random() < 0.1:
                inc.ct_failed("meter read timeout", now)
                ref.ct_failed("meter read timeout", now)
            else:
                assert inc.ct_sample(ct, now) == ref.ct_sample(ct, now)
        if rng.random() < 0.05:
            limit = rng.choice((20.0, 32.0, g.limit_a))
            refused = []
            for c in (inc, ref):
                try:
                    c.set_limit(limit)
                    refused.append(False)
                except RequestError:
                    refused.append(True)
            assert refused[0] == refused[1]
        if rng.random() < 0.04:  # the installer removes the unconnected ones
            gone = [cid for cid in IDS if cid not in streams
                    and any(m.charger_id == cid for m in inc.members)]
            assert inc.rebuild(gone).removed == ref.rebuild(gone).removed
            known = [k for k in known if k.charger_id not in gone]
        ref.forget_caches()
        a, b = inc.cycle(now), ref.cycle(now)
        same_cycle(a, b)
        if rng.random() < 0.3:  # the status, when someone asks
            assert a.status == b.status
            compared += 1
    return compared


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_incremental_cycles_equal_full_rebuilds(seed: int) -> None:
    run(seed, cycles=60)


def test_a_long_run_compares_statuses_too() -> None:
    assert run(12345, cycles=400) > 50


def test_a_repeated_report_is_judged_again_after_a_new_hello() -> None:
    """Rule 7 skips judging only a tuple already judged for this very Hello."""
    two = Member(charger_id="io7-0", group="garage", charger_current_limit_a=32.0,
                 connectors=(MemberConnector(connector_id=1, wiring=WIRINGS[0], hard_max_a=32.0),
                             MemberConnector(connector_id=2, wiring=WIRINGS[1], hard_max_a=32.0)))
    one = Member(charger_id="io7-0", group="garage", charger_current_limit_a=32.0,
                 connectors=two.connectors[:1])
    c = GroupControl(group=group(), term=5, members=[two], now_s=0.0)
    c.member_connected(two, 0.0)
    rng = random.Random(1)
    state = pb.AgentState(charger_id="io7-0", sequence=1, connectors=[
        connector_state(rng, 1, False), connector_state(rng, 2, False)])
    report = wire.ReportDecoder().decode(state, 1.0)
    assert c.report(report) is None
    c.member_connected(one, 2.0)
    again = type(report)(charger_id="io7-0", sequence=1, received_at_s=2.5,
                         connectors=report.connectors)  # the very tuple
    assert c.report(again) == "unknown connector ids [2]; the Hello named [1]"
