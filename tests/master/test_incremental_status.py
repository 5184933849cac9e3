"""GetStatus at 1 000 chargers (issue 15): a summary without the members, or one page of
them, from the same status the whole table comes from (master.wire.status_page)."""

from __future__ import annotations

from master import wire
from protos.io7.cluster.v1 import cluster_pb2 as pb


def status(members: int) -> pb.GroupStatus:
    s = pb.GroupStatus(group="garage", term=3, cycle=41, ct_status=pb.CT_STATUS_OK,
                       master_id="m", cycle_duration_ms=1.5, member_count=members,
                       online_count=members - 1)
    s.phases.add(phase=pb.PHASE_L1, limit_a=63.0, ct_a=10.0)
    s.external_limits.add(source="ems", phases=[pb.PhaseLimit(phase=pb.PHASE_L1, limit_a=40)])
    for k in range(members):
        m = s.members.add(charger_id=f"io7-{k:04d}", online=k > 0)
        m.connectors.add(connector_id=1, allocated_a=16.0)
    return s


def test_the_summary_is_the_status_without_members_and_small() -> None:
    full = status(1000)
    summary = wire.status_page(full, summary_only=True)
    assert not summary.members
    assert (summary.member_count, summary.online_count) == (1000, 999)
    without = pb.GroupStatus()
    without.CopyFrom(full)
    del without.members[:]
    assert summary == without
    assert summary.ByteSize() < 300 < full.ByteSize() // 50


def test_pages_cover_the_table_once_in_order() -> None:
    full = status(25)
    pages = [wire.status_page(full, summary_only=False, offset=k, limit=10)
             for k in range(0, 30, 10)]
    assert [len(p.members) for p in pages] == [10, 10, 5]
    assert [m for p in pages for m in p.members] == list(full.members)
    assert wire.status_page(full, summary_only=False, offset=20).members == full.members[20:]
    assert all(p.phases == full.phases and p.cycle == 41 for p in pages)
