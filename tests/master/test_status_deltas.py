"""WatchStatus deltas (issue 15, master/statusdelta.py): what the reader rebuilds is the
whole status (save the ages of unchanged members), and an unchanged table costs nothing."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from master.statusdelta import DeltaReader, DeltaWriter
from protos.io7.cluster.v1 import cluster_pb2 as pb


def status(cycle: int, members: dict[str, tuple[bool, float]], age_ms: int = 0
           ) -> pb.GroupStatus:
    s = pb.GroupStatus(group="garage", term=3, cycle=cycle, master_id="m",
                       member_count=len(members))
    s.phases.add(phase=pb.PHASE_L1, limit_a=63.0, allocated_a=float(cycle))
    for cid in sorted(members):
        online, amps = members[cid]
        m = s.members.add(charger_id=cid, online=online, last_seen_ms_ago=age_ms + cycle)
        m.connectors.add(connector_id=1, allocated_a=amps, session_energy_wh=amps * 10)
    return s


def without_ages(s: pb.GroupStatus) -> pb.GroupStatus:
    out = pb.GroupStatus()
    out.CopyFrom(s)
    for m in out.members:
        m.ClearField("last_seen_ms_ago")
    return out


def test_the_first_message_is_whole_and_an_unchanged_table_sends_no_member() -> None:
    w = DeltaWriter()
    table = {f"io7-{k:04d}": (True, 16.0) for k in range(1000)}
    first = w.next(status(1, table))
    assert not first.delta and len(first.members) == 1000
    second = w.next(status(2, table, age_ms=400))  # every age moved: not a change
    assert second.delta and not second.members and not second.removed_member_ids
    assert second.cycle == 2 and second.phases[0].allocated_a == 2.0  # the rest is whole
    assert second.ByteSize() < 200 < first.ByteSize() // 100


def test_changed_added_and_removed_members_travel_and_merge() -> None:
    w, r = DeltaWriter(), DeltaReader()
    a = {"a": (True, 16.0), "b": (True, 16.0), "c": (False, 0.0)}
    r.apply(w.next(status(1, a)))
    b = {"a": (True, 12.0), "c": (False, 0.0), "d": (True, 6.0)}  # a changed, b gone, d new
    msg = w.next(status(2, b))
    assert [m.charger_id for m in msg.members] == ["a", "d"]
    assert list(msg.removed_member_ids) == ["b"]
    assert without_ages(r.apply(msg)) == without_ages(status(2, b))


def test_a_whole_message_resets_the_reader() -> None:
    """A new master (a takeover) starts its stream whole: nothing of the old one stays."""
    r = DeltaReader()
    r.apply(status(1, {"a": (True, 16.0), "b": (True, 16.0)}))
    whole = status(1, {"c": (True, 8.0)})
    assert r.apply(whole) == whole


tables = st.dictionaries(st.sampled_from([f"io7-{k}" for k in range(12)]),
                         st.tuples(st.booleans(), st.sampled_from([0.0, 6.0, 10.5, 16.0])),
                         max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(tables, min_size=1, max_size=8), st.integers(0, 2**32))
def test_the_reader_rebuilds_every_status_of_a_random_stream(
        seq: list[dict[str, tuple[bool, float]]], seed: int) -> None:
    rng = random.Random(seed)
    w, r = DeltaWriter(), DeltaReader()
    for cycle, table in enumerate(seq, start=1):
        whole = status(cycle, table, age_ms=rng.randrange(1000))
        got = r.apply(w.next(whole))
        assert without_ages(got) == without_ages(whole)
