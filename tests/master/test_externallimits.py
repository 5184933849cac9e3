"""External site limits (issue 12 §4): the pure module's rules with worked numbers, and
engine rule 0 under an external limit. Rows are named after what they prove."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from master.allocation import ChargerInput, Mode, Phase, Reason, Snapshot, allocate
from master.allocation.model import InvalidInputError
from master.externallimits import (
    ExternalLimit,
    ExternalLimitError,
    ExternalLimits,
    InForce,
    limit_source,
)
from tests.alloc_support import charger, conn, ct, group

INF = math.inf
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp()
BO = "back office (ChargePointMaxProfile 3)"
EMS = "energy manager (Modbus TCP)"


def lim(source: str, a: tuple[float, float, float], until: float | None = None
        ) -> ExternalLimit:
    return ExternalLimit(source=source, limit_a=a, valid_until_unix_s=until)


@pytest.mark.parametrize(("name", "values"), [
    ("NaN", (math.nan, 10.0, 10.0)),
    ("negative", (-1.0, 10.0, 10.0)),
    ("absurd (W typed as A)", (100_000.0, 10.0, 10.0)),
    ("two phases", (10.0, 10.0)),
    ("a bool", (True, 10.0, 10.0)),
])
def test_a_limit_that_is_not_a_current_is_refused(name: str, values: tuple[float, ...]) -> None:
    with pytest.raises(ExternalLimitError, match=r"L1|L2 and L3"):
        lim(BO, values)  # type: ignore[arg-type]


def test_a_limit_needs_a_printable_source_and_a_finite_end() -> None:
    with pytest.raises(ExternalLimitError, match="source"):
        lim("bo\n", (1.0, 1.0, 1.0))
    with pytest.raises(ExternalLimitError, match="not a time"):
        lim(BO, (1.0, 1.0, 1.0), until=math.inf)


def test_zero_and_below_6a_are_allowed_they_pause_that_phase() -> None:
    assert lim(BO, (0.0, 4.0, INF)).limit_a == (0.0, 4.0, INF)


def test_lowest_wins_per_phase_and_names_its_source() -> None:
    ext = ExternalLimits()
    ext.put("back_office", lim(BO, (20.0, 20.0, 20.0), T0 + 3600), T0)
    ext.put("ems", lim(EMS, (25.0, 10.0, INF), T0 + 60), T0)
    now = ext.in_force(T0)
    assert now.cap_a == (20.0, 10.0, 20.0)
    assert [getattr(now.binding(p), "source", None) for p in Phase] == [BO, EMS, BO]
    assert [x.source for x in now.limits] == [EMS, BO]  # lowest first


def test_each_limit_expires_on_its_own_back_to_the_group_limit() -> None:
    ext = ExternalLimits()
    ext.put("back_office", lim(BO, (20.0, 20.0, 20.0), T0 + 3600), T0)
    ext.put("ems", lim(EMS, (10.0, 10.0, 10.0), T0 + 60), T0)
    assert ext.in_force(T0 + 59.9).cap_a == (10.0, 10.0, 10.0)
    assert ext.in_force(T0 + 60).cap_a == (20.0, 20.0, 20.0)  # the end is exclusive
    assert len(ext.expire(T0 + 60)) == 1
    assert ext.get("ems") is None
    assert ext.in_force(T0 + 3600).cap_a is None


def test_expire_returns_one_log_line_per_limit_gone() -> None:
    ext = ExternalLimits()
    ext.put("ems", lim(EMS, (10.0, 10.0, 10.0), T0 + 60), T0)
    assert ext.expire(T0 + 59) == []
    lines = ext.expire(T0 + 61)
    assert len(lines) == 1 and lines[0].startswith(f"expired: {EMS}: 10.0/10.0/10.0 A")
    assert ext.expire(T0 + 62) == []


def test_changes_are_logged_once_repeats_are_not() -> None:
    ext = ExternalLimits()
    a = lim(BO, (16.0, 16.0, 16.0), T0 + 60)
    assert str(ext.put("back_office", a, T0)).startswith(f"set: {BO}: 16.0/16.0/16.0 A")
    assert ext.put("back_office", a, T0 + 1) is None  # reported again every cycle
    b = lim(BO, (10.0, 10.0, 10.0), T0 + 120)
    assert str(ext.put("back_office", b, T0 + 2)).startswith("changed: ")
    assert str(ext.put("back_office", None, T0 + 3)).startswith(f"withdrawn: {BO}")
    assert ext.put("back_office", None, T0 + 4) is None


def test_a_limit_already_past_its_end_is_no_limit() -> None:
    ext = ExternalLimits()
    assert ext.put("ems", lim(EMS, (1.0, 1.0, 1.0), T0 - 1), T0) is None
    assert ext.in_force(T0).cap_a is None


CEST = timezone(timedelta(hours=2))
SOURCE_ROWS = [
    ("the installed limit when nothing else binds", 100.0, None, InForce(), "installed limit"),
    ("io7ctl lowered it", 80.0, None, InForce(), "set by io7ctl"),
    ("the CT kit is lost: the fallback", 100.0, 40.0, InForce(), "fallback limit (CT lost)"),
    ("the back office binds until 18:00 local time", 100.0, None,
     InForce((lim(BO, (50.0, 50.0, 50.0), datetime(2025, 6, 1, 18, 0, tzinfo=CEST)
                  .timestamp()),)), f"{BO} until 18:00"),
    ("tomorrow's end carries its date", 100.0, None,
     InForce((lim(EMS, (50.0, 50.0, 50.0), datetime(2025, 6, 2, 7, 30, tzinfo=CEST)
                  .timestamp()),)), f"{EMS} until 2025-06-02 07:30"),
    ("until withdrawn: no time", 100.0, None, InForce((lim(EMS, (50.0, INF, INF)),)), EMS),
    ("a tie names the group's own limit", 80.0, None,
     InForce((lim(EMS, (80.0, 80.0, 80.0)),)), "set by io7ctl"),
    ("above the fallback while the CT is lost: the fallback binds", 100.0, 40.0,
     InForce((lim(EMS, (50.0, 50.0, 50.0)),)), "fallback limit (CT lost)"),
]


@pytest.mark.parametrize(("name", "configured", "fallback", "external", "words"), SOURCE_ROWS)
def test_limit_source_words(name: str, configured: float, fallback: float | None,
                            external: InForce, words: str) -> None:
    now = datetime(2025, 6, 1, 14, 0, tzinfo=CEST).timestamp()
    assert limit_source(Phase.L1, configured_a=configured, installed_a=100.0,
                        ct_lost_limit_a=fallback, external=external, now_unix_s=now,
                        tz=CEST) == words


# --- engine rule 0 under an external limit -----------------------------------------

def _two_cars() -> tuple[ChargerInput, ...]:
    return (charger("a", conn(1, max_a=32.0)), charger("b", conn(1, max_a=32.0)))


def test_engine_shares_the_lower_of_group_and_external_limit_per_phase() -> None:
    snap = Snapshot(now_s=0.0, group=group(limit_a=32.0), chargers=_two_cars(),
                    external_limit_a=(20.0, INF, INF))
    a = allocate(snap)
    assert a.currents_a == (10.0, 10.0)
    assert [p.limit_a for p in a.phases] == [20.0, 32.0, 32.0]
    assert a.result("a", 1).reason is Reason.PHASE_LIMIT


def test_engine_never_raises_the_group_limit() -> None:
    snap = Snapshot(now_s=0.0, group=group(limit_a=32.0), chargers=_two_cars(),
                    external_limit_a=(500.0, 500.0, 500.0))
    assert allocate(snap).currents_a == (16.0, 16.0)


def test_a_drop_below_the_allocation_decreases_at_once() -> None:
    g = group(limit_a=32.0)
    first = allocate(Snapshot(now_s=0.0, group=g, chargers=_two_cars()))
    assert first.currents_a == (16.0, 16.0)
    cut = allocate(Snapshot(now_s=1.0, group=g, chargers=_two_cars(),
                            external_limit_a=(10.0, INF, INF)), first.state)
    # 10 A cannot hold two cars at 6 A: one is paused, the other gets all 10 A, now.
    assert sorted(cut.currents_a) == [0.0, 10.0]
    assert sum(cut.currents_a) <= 10.0


def test_below_6a_pauses_every_connector_on_that_phase() -> None:
    snap = Snapshot(now_s=0.0, group=group(limit_a=32.0), chargers=_two_cars(),
                    external_limit_a=(4.0, INF, INF))
    assert allocate(snap).currents_a == (0.0, 0.0)


def test_dynamic_mode_takes_the_external_limit_before_other_load_and_margin() -> None:
    g = group(limit_a=100.0, mode=Mode.DYNAMIC, fallback_limit_a=30.0, margin_a=2.0)
    snap = Snapshot(now_s=0.0, group=g, chargers=_two_cars(), ct=ct(20, 20, 20),
                    external_limit_a=(42.0, 42.0, 42.0))
    # CT on the grid, our cars draw 0: other load 20 A; 42 - 20 - 2 = 20 A to share.
    assert allocate(snap).currents_a == (10.0, 10.0)


@pytest.mark.parametrize("bad", [(math.nan, 1.0, 1.0), (-1.0, 1.0, 1.0), (1.0, 1.0)])
def test_snapshot_refuses_a_bad_external_limit(bad: tuple[float, ...]) -> None:
    with pytest.raises(InvalidInputError, match="external_limit_a"):
        Snapshot(now_s=0.0, group=group(), chargers=_two_cars(), external_limit_a=bad)  # type: ignore[arg-type]
