"""`master.ctwatch`: when identical CT readings mean a frozen kit. Named rows, virtual time.

Each row feeds one sample per second: the clamp readings and the chargers' draw per site
phase come from functions of the time, and the row says at which second (if any) the kit
is first judged frozen, and whether it still is at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from master.allocation import CtPlacement, Phase
from master.ctwatch import CtFreezeWatch, FreezeSettings, site_draw_a

Reading = tuple[float | None, float | None, float | None]
Draw = tuple[float, float, float]

STUCK: Reading = (41.25, 30.5, 12.0)


def stuck(_: float) -> Reading:
    return STUCK


def live(t: float) -> Reading:
    return (41.25 + 0.01 * t, 30.5, 12.0)  # one clamp moves a little every second


def step_at(t0: float, amps: float) -> Callable[[float], Draw]:
    return lambda t: (amps, amps, amps) if t >= t0 else (0.0, 0.0, 0.0)


def ramp(t: float) -> Draw:
    return (0.1 * t, 0.0, 0.0)  # 1 A every 10 s on L1 only


def flat(_: float) -> Draw:
    return (16.0, 16.0, 16.0)


def thaw_at(t0: float) -> Callable[[float], Reading]:
    return lambda t: STUCK if t < t0 else (41.25 + t, 30.5, 12.0)


def scenario_c(_: float) -> Reading:
    return (None, 20.0, None)  # one clamp, on L2


def negative_zero(t: float) -> Reading:
    return (0.0 if int(t) % 2 else -0.0, 0.0, 0.0)


GRID, OTHER = CtPlacement.GRID, CtPlacement.OTHER_LOADS

# name, readings, draw, placement, settings, seconds, first frozen at, frozen at the end
ROWS = [
    ("stuck kit, a car starts at 10 s: frozen once identical for > 60 s",
     stuck, step_at(10, 16.0), GRID, FreezeSettings(), 120, 62, True),
    ("stuck kit, a car starts only at 100 s: frozen at once then",
     stuck, step_at(100, 16.0), GRID, FreezeSettings(), 120, 100, True),
    ("stuck kit, nothing changes: a quiet site may read the same",
     stuck, flat, GRID, FreezeSettings(), 600, None, False),
    ("stuck kit, draw creeps 1 A per 10 s: frozen once past 3 A and 60 s",
     stuck, ramp, GRID, FreezeSettings(), 120, 62, True),
    ("stuck kit, draw moves 3 A exactly: not more than 3 A, trusted",
     stuck, step_at(10, 3.0), GRID, FreezeSettings(), 300, None, False),
    ("live kit, a car starts: readings differ, never frozen",
     live, step_at(10, 16.0), GRID, FreezeSettings(), 300, None, False),
    ("CT on other loads only: need not follow the chargers",
     stuck, step_at(10, 16.0), OTHER, FreezeSettings(), 300, None, False),
    ("kit thaws at 90 s: frozen from 62 s, recovers at once",
     thaw_at(90), step_at(10, 16.0), GRID, FreezeSettings(), 120, 62, False),
    ("configured 20 s and 10 A: a 16 A step is enough",
     stuck, step_at(5, 16.0), GRID,
     FreezeSettings(frozen_after_s=20.0, min_draw_change_a=10.0), 60, 22, True),
    ("configured 10 A: a 6 A step is not enough",
     stuck, step_at(5, 6.0), GRID, FreezeSettings(min_draw_change_a=10.0), 300, None, False),
    ("scenario C: only the clamped phase's draw counts (L1 moves, L2 does not)",
     scenario_c, ramp, GRID, FreezeSettings(), 300, None, False),
    ("0.0 and -0.0 alternate: the registers differ, so not identical",
     negative_zero, step_at(10, 16.0), GRID, FreezeSettings(), 300, None, False),
]


@pytest.mark.parametrize(("name", "readings", "draw", "placement", "settings", "seconds",
                          "first_frozen_s", "frozen_at_end"), ROWS, ids=[r[0] for r in ROWS])
def test_frozen_kit_rules(name: str, readings: Callable[[float], Reading],
                          draw: Callable[[float], Draw], placement: CtPlacement,
                          settings: FreezeSettings, seconds: int, first_frozen_s: int | None,
                          frozen_at_end: bool) -> None:
    watch = CtFreezeWatch(settings)
    first = None
    text = ""
    for t in range(1, seconds + 1):
        text = watch.sample(readings(t), draw(t), float(t), placement=placement)
        assert bool(text) == watch.frozen
        if watch.frozen and first is None:
            first = t
    assert first == first_frozen_s, name
    assert watch.frozen == frozen_at_end, name


def test_fault_text_says_how_long_and_how_much() -> None:
    watch = CtFreezeWatch()
    for t in range(1, 76):
        text = watch.sample(STUCK, (0.0, 12.4 if t > 30 else 0.0, 0.0), float(t),
                            placement=GRID)
    assert text.startswith("CT kit frozen: identical readings for 74 s while the chargers' "
                           "draw changed by 12.4 A; the fallback limit applies")


def test_site_draw_follows_the_wiring() -> None:
    rotated = (Phase.L2, Phase.L3, Phase.L1)
    single = (Phase.L3, None, None)
    assert site_draw_a([(rotated, (10.0, 11.0, 12.0)), (single, (7.0, 0.0, 0.0))]) == (
        12.0, 10.0, 18.0)


@pytest.mark.parametrize("settings", [{"frozen_after_s": 0.0}, {"min_draw_change_a": -1.0},
                                      {"frozen_after_s": float("nan")}])
def test_settings_refuse_nonsense(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        FreezeSettings(**settings)
