"""master.election.lease: the leader lease from committed probes, with worked numbers."""

from __future__ import annotations

import pytest

from master.election.lease import LeaderLease, LeaseSettings

S = LeaseSettings(lease_s=3.0, min_valid_s=1.0, probe_every_s=0.2)


def test_a_member_that_does_not_lead_issues_nothing() -> None:
    lease = LeaderLease(S)
    assert lease.valid_for_s(10.0) == 0.0
    assert not lease.probe_due(10.0)


def test_leading_without_a_committed_probe_issues_nothing() -> None:
    lease = LeaderLease(S)
    lease.on_leading(5, 10.0)
    assert lease.valid_for_s(10.0) == 0.0  # Raft says leader: not enough (module docstring)


def test_probes_are_due_every_probe_period() -> None:
    lease = LeaderLease(S)
    lease.on_leading(5, 10.0)
    assert lease.probe_due(10.0)
    assert not lease.probe_due(10.1)
    assert lease.probe_due(10.2)


def test_the_lease_ends_lease_s_after_the_newest_confirmed_probe() -> None:
    lease = LeaderLease(S)
    lease.on_leading(5, 10.0)
    lease.on_committed(5, 10.0)  # sent at 10.0, committed later
    assert lease.valid_for_s(10.05) == pytest.approx(2.95)
    assert lease.valid_for_s(12.0) == pytest.approx(1.0)
    assert lease.valid_for_s(12.01) == 0.0  # below min_valid_s: stop issuing
    lease.on_committed(5, 10.4)
    assert lease.valid_for_s(12.01) == pytest.approx(1.39)
    assert lease.valid_for_s(9.0) == 3.0  # never more than lease_s


def test_a_late_commit_of_an_older_probe_does_not_move_the_confirmation_back() -> None:
    lease = LeaderLease(S)
    lease.on_leading(5, 10.0)
    lease.on_committed(5, 10.4)
    lease.on_committed(5, 10.2)
    assert lease.confirmed_at_s == 10.4
    assert lease.led_since_s == 10.4


def test_a_probe_of_another_term_confirms_nothing() -> None:
    lease = LeaderLease(S)
    lease.on_leading(6, 10.0)
    lease.on_committed(5, 10.0)
    assert lease.valid_for_s(10.1) == 0.0


def test_a_new_term_or_losing_leadership_forgets_every_confirmation() -> None:
    lease = LeaderLease(S)
    lease.on_leading(5, 10.0)
    lease.on_committed(5, 10.0)
    lease.on_leading(None, 10.5)
    assert lease.valid_for_s(10.5) == 0.0
    lease.on_leading(7, 11.0)
    assert lease.valid_for_s(11.0) == 0.0 and lease.led_since_s is None


@pytest.mark.parametrize(("lease_s", "min_valid_s", "probe_every_s", "says"), [
    (3.0, 0.0, 0.2, "min_valid_s"),
    (3.0, 3.0, 0.2, "min_valid_s"),
    (3.0, 1.0, 2.0, "probe_every_s"),
    (3.0, 1.0, 0.0, "probe_every_s"),
])
def test_settings_that_would_never_issue_are_refused(lease_s: float, min_valid_s: float,
                                                     probe_every_s: float, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        LeaseSettings(lease_s=lease_s, min_valid_s=min_valid_s, probe_every_s=probe_every_s)
