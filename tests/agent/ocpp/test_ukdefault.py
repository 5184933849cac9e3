"""The UK default profile: no-charging periods in local time (DST), randomised delays."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.errors import ConfigError
from agent.ocpp.ukdefault import (
    NoChargingPeriod,
    Postponement,
    Reason,
    UkDefault,
    UkDefaultError,
    UkDefaultSettings,
    uk_default_from_table,
)

LONDON = ZoneInfo("Europe/London")
SEED = 7


def london(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, fold: int = 0) -> datetime:
    """A London wall-clock time as a UTC instant."""
    return datetime(y, mo, d, h, mi, s, tzinfo=LONDON, fold=fold).astimezone(UTC)


def utc(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def draws(n: int, max_s: int = 600, seed: int = SEED) -> list[int]:
    """The delays a `UkDefault` seeded with `seed` draws, in order."""
    rng = random.Random(seed)
    return [rng.randint(0, max_s) for _ in range(n)]


def uk(*periods: tuple[str, str], delay_s: int = 600, enabled: bool = True,
       seed: int = SEED) -> UkDefault:
    kw: dict[str, Any] = {}
    if periods:
        kw["periods"] = tuple(NoChargingPeriod.parse(s, e) for s, e in periods)
    settings = UkDefaultSettings(enabled=enabled, max_random_delay_s=delay_s, **kw)
    return UkDefault(settings, random.Random(seed))


def ask(u: UkDefault, now: datetime, cid: int = 1, *, plugged: bool = True,
        wants: bool = True) -> Postponement | None:
    return u.postponed(cid, now, plugged_in=plugged, wants_to_start=wants)


# -- settings --------------------------------------------------------------------------------


def test_defaults_are_the_regulations_peak_hours_and_600_s() -> None:
    s = UkDefaultSettings()
    assert (s.enabled, s.tz, s.max_random_delay_s) == (False, "Europe/London", 600)
    assert [(f"{p.start:%H:%M}", f"{p.end:%H:%M}") for p in s.periods] == [
        ("08:00", "11:00"), ("16:00", "22:00")]


@pytest.mark.parametrize(("table", "key", "says"), [
    ({"enabled": "yes"}, "enabled", "true or false"),
    ({"tz": "Mars/Olympus"}, "tz", "unknown time zone"),
    ({"max_random_delay_s": 1801}, "max_random_delay_s", "0-1800"),
    ({"max_random_delay_s": -1}, "max_random_delay_s", "0-1800"),
    ({"max_random_delay_s": 60.5}, "max_random_delay_s", "0-1800"),
    ({"no_charging_periods": [["08:00", "11:00"]] * 3}, "no_charging_periods", "at most 2"),
    ({"no_charging_periods": "08:00-11:00"}, "no_charging_periods", "must be a list"),
    ({"no_charging_periods": [["08:00"]]}, "no_charging_periods[0]", "[\"HH:MM\", \"HH:MM\"]"),
    ({"no_charging_periods": [["8:00", "11:00"]]}, "no_charging_periods[0].start", "HH:MM"),
    ({"no_charging_periods": [["08:00", "24:00"]]}, "no_charging_periods[0].end", "00:00-23:59"),
    ({"no_charging_periods": [["08:00", "08:60"]]}, "no_charging_periods[0].end", "HH:MM"),
    ({"no_charging_periods": [["10:00", "10:00"]]}, "no_charging_periods[0].end", "must differ"),
    ({"periods": []}, "periods", "unknown key"),
], ids=["enabled", "tz", "delay-high", "delay-negative", "delay-fraction", "three-periods",
        "periods-string", "period-pair", "start-format", "end-24", "end-minutes", "empty",
        "unknown-key"])
def test_bad_settings_name_the_key_and_range(table: dict[str, Any], key: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        uk_default_from_table(table, file=Path("/etc/io7/agent.toml"))
    assert err.value.key == f"smart_charging.uk_default.{key}"
    assert says in err.value.problem
    assert str(err.value).startswith(f"/etc/io7/agent.toml: smart_charging.uk_default.{key}: ")


def test_settings_from_a_table() -> None:
    s = uk_default_from_table({"enabled": True, "tz": "Europe/Dublin", "max_random_delay_s": 0,
                               "no_charging_periods": [["23:00", "01:30"]]}, file=Path("a.toml"))
    assert s == UkDefaultSettings(enabled=True, tz="Europe/Dublin", max_random_delay_s=0,
                                  periods=(NoChargingPeriod.parse("23:00", "01:30"),))
    assert uk_default_from_table({}, file=Path("a.toml")) == UkDefaultSettings()
    with pytest.raises(UkDefaultError) as err:
        UkDefaultSettings(max_random_delay_s=3600)
    assert err.value.key == "max_random_delay_s"


# -- postponement -------------------------------------------------------------------------------


def test_disabled_or_unplugged_is_never_postponed() -> None:
    off = uk(enabled=False)
    assert ask(off, london(2026, 1, 14, 9)) is None
    on = uk()
    assert ask(on, london(2026, 1, 14, 9), plugged=False) is None


def test_inside_a_period_waits_for_its_end_plus_one_drawn_delay() -> None:
    u = uk()
    (d,) = draws(1)
    end = london(2026, 1, 14, 11)
    first = ask(u, london(2026, 1, 14, 9))
    assert first == Postponement(reason=Reason.NO_CHARGING_PERIOD,
                                 until=end + timedelta(seconds=d), delay_s=d)
    assert ask(u, london(2026, 1, 14, 10, 59)) == first  # drawn once
    assert d > 0  # seed 7 draws 331 s
    after = ask(u, end + timedelta(seconds=d - 1))
    assert after == Postponement(reason=Reason.RANDOMISED_DELAY, until=first.until, delay_s=d)
    assert ask(u, end + timedelta(seconds=d)) is None


def test_session_start_outside_a_period_is_delayed_once() -> None:
    u = uk()
    d1, d2 = draws(2)
    t = london(2026, 1, 14, 12)
    assert ask(u, t) == Postponement(reason=Reason.RANDOMISED_DELAY,
                                     until=t + timedelta(seconds=d1), delay_s=d1)
    assert ask(u, t + timedelta(seconds=d1)) is None
    assert ask(u, t + timedelta(minutes=20), wants=False) is None  # paused: no draw
    assert ask(u, t + timedelta(minutes=30)) is None  # resumed in the same session
    assert ask(u, t + timedelta(minutes=40), plugged=False) is None  # unplugged: new session
    again = t + timedelta(minutes=50)
    assert ask(u, again) == Postponement(reason=Reason.RANDOMISED_DELAY,
                                         until=again + timedelta(seconds=d2), delay_s=d2)


def test_not_wanting_to_start_draws_nothing() -> None:
    rng = random.Random(SEED)
    u = UkDefault(UkDefaultSettings(enabled=True), rng)
    state = rng.getstate()
    assert ask(u, london(2026, 1, 14, 9), wants=False) is None
    assert ask(u, london(2026, 1, 14, 12), wants=False) is None
    assert rng.getstate() == state


def test_charging_connector_stops_at_once_when_a_period_begins() -> None:
    u = uk()
    _, d_end = draws(2)  # the session start's delay, then the period end's
    assert ask(u, london(2026, 1, 14, 6)) is not None
    assert ask(u, london(2026, 1, 14, 7, 59, 59)) is None  # charging
    stop = ask(u, london(2026, 1, 14, 8))
    assert stop == Postponement(reason=Reason.NO_CHARGING_PERIOD,
                                until=london(2026, 1, 14, 11) + timedelta(seconds=d_end),
                                delay_s=d_end)


def test_start_delay_running_into_a_period_becomes_the_period() -> None:
    u = uk(delay_s=1800)
    d_start, d_end = draws(2, 1800)
    assert d_start > 300  # seed 7: 663 s, so the start delay runs past 08:00
    assert ask(u, london(2026, 1, 14, 7, 55)) is not None
    p = ask(u, london(2026, 1, 14, 8, 0))
    assert p is not None and p.reason is Reason.NO_CHARGING_PERIOD
    assert p.until == london(2026, 1, 14, 11) + timedelta(seconds=d_end)


def test_connectors_draw_their_own_delays() -> None:
    u = uk()
    d1, d2 = draws(2)
    end = london(2026, 1, 14, 22)
    p1, p2 = ask(u, london(2026, 1, 14, 17), 1), ask(u, london(2026, 1, 14, 17), 2)
    assert p1 is not None and p2 is not None
    assert (p1.until, p2.until) == (end + timedelta(seconds=d1), end + timedelta(seconds=d2))


def test_no_delay_when_the_maximum_is_0() -> None:
    u = uk(delay_s=0)
    assert ask(u, london(2026, 1, 14, 12)) is None
    p = ask(u, london(2026, 1, 14, 16, 30))
    assert p is not None and p.until == london(2026, 1, 14, 22) and p.delay_s == 0
    assert ask(u, london(2026, 1, 14, 22)) is None


def test_delays_stay_within_the_maximum() -> None:
    seen = set()
    for seed in range(200):
        p = ask(uk(delay_s=1800, seed=seed), london(2026, 1, 14, 12))
        assert p is not None and 0 <= p.delay_s <= 1800
        seen.add(p.delay_s)
    assert len(seen) > 100


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        ask(uk(), datetime(2026, 1, 14, 9))


# -- periods in local time --------------------------------------------------------------------


@pytest.mark.parametrize(("now", "end"), [
    (utc(2026, 3, 28, 7, 30), None),  # Saturday before the change: 07:30 GMT
    (utc(2026, 3, 29, 7, 30), utc(2026, 3, 29, 10)),  # spring forward: 08:30 BST
    (utc(2026, 3, 29, 21, 30), None),  # 22:30 BST
    (utc(2026, 10, 24, 7, 30), utc(2026, 10, 24, 10)),  # 08:30 BST
    (utc(2026, 10, 25, 7, 30), None),  # fall back: 07:30 GMT
    (utc(2026, 10, 25, 21, 30), utc(2026, 10, 25, 22)),  # 21:30 GMT
], ids=["28mar", "29mar-morning", "29mar-evening", "24oct", "25oct-morning", "25oct-evening"])
def test_default_periods_follow_london_summer_time(now: datetime, end: datetime | None) -> None:
    assert uk().period_end(now) == end


def test_night_period_across_the_spring_change_is_shorter() -> None:
    u = uk(("00:30", "03:00"))
    assert u.period_end(utc(2026, 3, 29, 0, 29)) is None
    assert u.period_end(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 2)  # 03:00 BST
    assert u.period_end(utc(2026, 3, 29, 2)) is None


def test_night_period_across_the_autumn_change_is_longer() -> None:
    u = uk(("00:30", "03:00"))
    assert u.period_end(utc(2026, 10, 24, 23, 30)) == utc(2026, 10, 25, 3)  # 00:30 BST
    assert u.period_end(utc(2026, 10, 25, 2, 59)) == utc(2026, 10, 25, 3)  # 3 h 30 min long


def test_boundary_in_the_spring_gap_is_the_jump() -> None:
    u = uk(("01:30", "06:00"))  # 01:30 never shows on 29 March: 00:59:59 GMT -> 02:00 BST
    assert u.period_end(utc(2026, 3, 29, 0, 59)) is None
    assert u.period_end(utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 5)


def test_repeated_autumn_time_counts_twice() -> None:
    u = uk(("00:00", "01:30"))  # 01:00-02:00 shows twice on 25 October
    end = london(2026, 10, 25, 1, 30, fold=1)
    assert end == utc(2026, 10, 25, 1, 30)
    assert u.period_end(london(2026, 10, 25, 1, 15, fold=0)) == end
    assert u.period_end(london(2026, 10, 25, 1, 15, fold=1)) == end
    assert u.period_end(end) is None


def test_period_across_midnight_and_touching_periods() -> None:
    u = uk(("22:00", "06:00"), ("06:00", "07:00"))
    assert u.period_end(london(2026, 1, 14, 23)) == london(2026, 1, 15, 7)
    assert u.period_end(london(2026, 1, 15, 3)) == london(2026, 1, 15, 7)
    assert u.period_end(london(2026, 1, 15, 7)) is None
    assert u.period_end(london(2026, 1, 15, 21, 59)) is None
