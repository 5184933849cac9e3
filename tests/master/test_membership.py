"""Group membership on disk: admit, refuse, rebuild, and survive a restart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from master.allocation import Phase
from master.errors import PeerError, RequestError
from master.membership import Member, MemberConnector, MembershipStore, plan_rebuild
from tests.master.support import member

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MembershipStore]:
    with MembershipStore(tmp_path / "members.sqlite3", group="garage") as s:
        yield s


def test_admit_records_a_new_member(store: MembershipStore) -> None:
    m = member("io7-001")
    result = store.admit(m, now_wall=T0)
    assert (result.accepted, result.new, result.reason) == (True, True, "")
    assert store.known() == [m]
    assert store.journal_mode() == "wal"


def test_admit_again_refreshes_hello_and_last_seen_only(store: MembershipStore) -> None:
    store.admit(member("io7-001", limit_a=32.0), now_wall=T0)
    changed = member("io7-001", limit_a=16.0, connectors=1)
    later = T0 + timedelta(hours=2)
    result = store.admit(changed, now_wall=later)
    assert (result.accepted, result.new) == (True, False)
    [record] = store.records()
    assert record.member == changed
    assert (record.first_seen, record.last_seen) == (T0, later)
    store.seen(["io7-001"], now_wall=later + timedelta(minutes=5))
    assert store.records()[0].last_seen == later + timedelta(minutes=5)


def test_wrong_group_is_refused_and_not_stored(store: MembershipStore) -> None:
    result = store.admit(member("io7-009", group="office"), now_wall=T0)
    assert not result.accepted
    assert "configured for group 'office'" in result.reason
    assert "leads 'garage'" in result.reason
    assert store.known() == []


def test_closed_group_refuses_unknown_chargers_only(tmp_path: Path) -> None:
    path = tmp_path / "members.sqlite3"
    with MembershipStore(path, group="garage") as open_store:
        assert open_store.admit(member("io7-001"), now_wall=T0).accepted
    with MembershipStore(path, group="garage", closed=True) as closed:
        refused = closed.admit(member("io7-002"), now_wall=T0)
        assert not refused.accepted
        assert "closed to new chargers" in refused.reason
        assert closed.admit(member("io7-001"), now_wall=T0).accepted  # a member rejoins
        assert [m.charger_id for m in closed.known()] == ["io7-001"]


def test_an_admitted_charger_joins_a_closed_group(tmp_path: Path) -> None:
    """Issue 11: the installer admits a charger (io7ctl admit ID) before its first Hello;
    admitting is idempotent, survives a restart, and a rebuild that forgets the charger
    withdraws the admission too."""
    path = tmp_path / "members.sqlite3"
    with MembershipStore(path, group="garage", closed=True) as closed:
        refused = closed.admit(member("io7-002"), now_wall=T0)
        assert "io7ctl admit io7-002" in refused.reason  # the refusal says what to do
        assert closed.admit_id("io7-002", now_wall=T0) is True
        assert closed.admit_id("io7-002", now_wall=T0) is False  # already admitted
        assert closed.known() == []  # no Hello yet: nothing to reserve for
    with MembershipStore(path, group="garage", closed=True) as closed:
        joined = closed.admit(member("io7-002"), now_wall=T0)
        assert (joined.accepted, joined.new) == (True, True)
        assert closed.admit_id("io7-002", now_wall=T0) is False  # a member now
        closed.forget(["io7-002"])
        assert not closed.admit(member("io7-002"), now_wall=T0).accepted
    with MembershipStore(path, group="office", closed=True) as office:
        office.admit_id("io7-003", now_wall=T0)
    with MembershipStore(path, group="garage", closed=True) as closed:
        assert not closed.admit(member("io7-003"), now_wall=T0).accepted  # other group's


# Rule 3 (issue 10): only chargers named as physically removed are forgotten, and only
# while not connected. Members a, b, c; b is connected.
REBUILDS = [
    ("nobody named: nothing forgotten, offline a and c keep their reservation",
     [], (), ("a", "b", "c"), ("a", "c"), ()),
    ("offline a named: forgotten, c still reserved", ["a"], ("a",), ("b", "c"), ("c",), ()),
    ("connected b named: refused, kept", ["b"], (), ("a", "b", "c"), ("a", "c"), ("b",)),
    ("both offline named, twice", ["c", "a", "c"], ("a", "c"), ("b",), (), ()),
    ("offline and connected named", ["a", "b"], ("a",), ("b", "c"), ("c",), ("b",)),
]


@pytest.mark.parametrize(("row", "named", "removed", "kept", "offline_kept", "refused"),
                         REBUILDS, ids=[r[0] for r in REBUILDS])
def test_rebuild_plan(row: str, named: list[str], removed: tuple[str, ...],
                      kept: tuple[str, ...], offline_kept: tuple[str, ...],
                      refused: tuple[str, ...]) -> None:
    plan = plan_rebuild(group="garage", members=["a", "b", "c"], connected={"b"},
                        named=named)
    assert (plan.removed, plan.kept, plan.offline_kept, plan.refused_connected) == (
        removed, kept, offline_kept, refused), row


def test_rebuild_naming_a_stranger_is_refused_whole() -> None:
    with pytest.raises(RequestError) as info:
        plan_rebuild(group="garage", members=["a", "b"], connected=set(),
                     named=["a", "io7-9", "x"])
    assert str(info.value) == ("RebuildGroup: 'io7-9', 'x' not a member of group 'garage'; "
                               "nothing was removed: check the ids with io7ctl status")


def test_forget_deletes_only_the_given_members(store: MembershipStore) -> None:
    for cid in ("a", "b", "c"):
        store.admit(member(cid), now_wall=T0)
    store.forget(["a", "c", "not-a-member"])
    assert [m.charger_id for m in store.known()] == ["b"]


def test_members_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "members.sqlite3"
    single = Member(charger_id="io7-c", group="garage", charger_current_limit_a=32.0,
                    firmware_version="1.4.2", software_version="0.1.0",
                    connectors=(MemberConnector(connector_id=1, wiring=(Phase.L2, None, None),
                                                hard_max_a=32.0),
                                MemberConnector(connector_id=2,
                                                wiring=(Phase.L3, Phase.L1, Phase.L2),
                                                hard_max_a=20.0)))
    store = MembershipStore(path, group="garage")
    store.admit(single, now_wall=T0)
    store.admit(member("io7-a"), now_wall=T0 + timedelta(seconds=1))
    store.close()
    with MembershipStore(path, group="garage") as reopened:
        assert reopened.known() == [member("io7-a"), single]  # ordered by charger id
        assert reopened.records()[1].first_seen == T0
    with MembershipStore(path, group="other") as other_group:
        assert other_group.known() == []


def test_naive_wall_clock_is_refused(store: MembershipStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.admit(member("x"), now_wall=datetime(2025, 1, 1))


BAD_HELLOS = [
    ("charger limit 70 A", {"charger_current_limit_a": 70.0}, "current_limit_a=70.0"),
    ("no connectors", {"connectors": ()}, "has no connectors"),
    ("L1 not wired", {"connectors": (MemberConnector(connector_id=1,
                                                     wiring=(None, Phase.L2, None),
                                                     hard_max_a=32.0),)}, "L1 must be wired"),
    ("hard max 100 A", {"connectors": (MemberConnector(connector_id=1, wiring=(Phase.L1,
                                                                              None, None),
                                                       hard_max_a=100.0),)}, "max_current_a"),
    ("no group", {"group": ""}, "names no group"),
]


@pytest.mark.parametrize(("row", "change", "text"), BAD_HELLOS, ids=[r[0] for r in BAD_HELLOS])
def test_a_hello_the_engine_cannot_take_is_a_peer_error(row: str, change: dict[str, object],
                                                        text: str) -> None:
    with pytest.raises(PeerError) as info:
        replace(member("io7-bad"), **change)  # type: ignore[arg-type]
    assert info.value.peer == "charger 'io7-bad'"
    assert text in str(info.value), row
