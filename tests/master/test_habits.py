"""Per-card habits (issue 12 §3): the agent's pseudonym of an idTag, and what the master
learns from a card's past sessions (master/habits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.wire import PSEUDONYM_HEX, tag_key, tag_pseudonym
from master.habits import LAST_N, Habit, HabitStore, learn


def test_a_pseudonym_is_stable_per_site_and_never_the_tag() -> None:
    key = tag_key("garage", b"-----BEGIN CERTIFICATE-----site A")
    p = tag_pseudonym("04A1B2C3D4", key)
    assert len(p) == PSEUDONYM_HEX and int(p, 16) >= 0
    assert "04A1B2C3D4".lower() not in p
    assert tag_pseudonym("04a1b2c3d4 ", key) == p  # as a reader may type it
    assert tag_pseudonym("04A1B2C3D5", key) != p
    other_site = tag_key("garage", b"-----BEGIN CERTIFICATE-----site B")
    assert tag_pseudonym("04A1B2C3D4", other_site) != p
    assert tag_pseudonym("", key) == ""


def test_learning_takes_medians_of_the_last_sessions_and_needs_three() -> None:
    assert learn([(61200.0, 9000.0), (63000.0, 11000.0)]) is None
    rows = [(61200.0, 9000.0), (63000.0, 11000.0), (62100.0, 30000.0)]
    assert learn(rows) == Habit(departure_tod_s=62100.0, energy_wh=11000.0)
    old = [(0.0, 0.0)] * 20  # an old routine is forgotten after LAST_N sessions
    assert learn(old + [(61200.0, 9000.0)] * LAST_N) == Habit(departure_tod_s=61200.0,
                                                                energy_wh=9000.0)


def test_a_habit_becomes_a_need_until_its_usual_departure() -> None:
    h = Habit(departure_tod_s=17 * 3600.0, energy_wh=12000.0)
    need = h.need("io7-01", 2, now_tod_s=9 * 3600.0)
    assert need is not None and need.departure_in_s == 8 * 3600.0 and need.energy_wh == 12000.0
    assert h.need("io7-01", 2, now_tod_s=18 * 3600.0) is None


def test_the_store_keeps_sessions_per_card_across_restarts(tmp_path: Path) -> None:
    db = tmp_path / "master.sqlite3"
    store = HabitStore(db)
    for day in range(5):
        store.record("a1b2c3d4e5f60718", ended_unix_s=day * 86400.0 + 60000.0,
                     departure_tod_s=60000.0 + day * 100.0, energy_wh=10000.0 + day)
    store.record("", ended_unix_s=0.0, departure_tod_s=1.0, energy_wh=1.0)  # nobody's
    store.close()
    again = HabitStore(db)
    assert again.habit("a1b2c3d4e5f60718") == Habit(departure_tod_s=60200.0, energy_wh=10002.0)
    assert again.habit("ffffffffffffffff") is None
    with pytest.raises(ValueError, match="departure_tod_s"):
        again.record("x", ended_unix_s=0.0, departure_tod_s=90000.0, energy_wh=1.0)
    again.close()
