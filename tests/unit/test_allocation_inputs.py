"""Bad input gets a clear error naming the field and the allowed range; never a silent
wrong allocation."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from master.allocation import (
    ChargerInput,
    ConnectorInput,
    CtReading,
    GroupConfig,
    InfeasibleGroupError,
    InvalidInputError,
    Mode,
    OfflineStrategy,
    Phase,
    Snapshot,
)
from tests.alloc_support import L1, L2, THREE, charger, conn, group, single

ROWS: list[tuple[str, Callable[[], object], str]] = [
    ("charger limit below 6 A (manual 6.3: 6-63 A)",
     lambda: charger("c1", conn(1), limit_a=5.0), "current_limit_a=5.0"),
    ("charger limit above 63 A",
     lambda: charger("c1", conn(1), limit_a=64.0), "[6.0, 63.0]"),
    ("NaN measured current",
     lambda: conn(1, measured=(math.nan, 0.0, 0.0)), "measured_a[L1]=nan"),
    ("negative measured current",
     lambda: conn(1, measured=(0.0, -1.0, 0.0)), "measured_a[L2]=-1.0"),
    ("absurd measured current",
     lambda: conn(1, measured=(0.0, 0.0, 5000.0)), "measured_a[L3]=5000.0"),
    ("unknown phase in the wiring",
     lambda: conn(1, wiring=(L1, "L4", None)), "unknown phase"),  # type: ignore[arg-type]
    ("two lines on one site phase",
     lambda: conn(1, wiring=(L1, L1, None)), "two lines wired to one site phase"),
    ("no line wired",
     lambda: conn(1, wiring=(None, None, None)), "no line is wired"),
    ("duplicate connector ids",
     lambda: charger("c1", conn(1), conn(1)), "duplicate connector ids"),
    ("more than two connectors",
     lambda: charger("c1", conn(1), conn(2), conn(3)), "an io7 has 1 or 2"),
    ("duplicate charger ids",
     lambda: Snapshot(now_s=0.0, group=group(), chargers=(charger("c1"), charger("c1"))),
     "duplicate charger ids"),
    ("dynamic mode without a fallback limit",
     lambda: GroupConfig(name="g", mode=Mode.DYNAMIC, limit_a=100.0),
     "fallback_limit_a is required"),
    ("fallback above the limit",
     lambda: GroupConfig(name="g", mode=Mode.DYNAMIC, limit_a=100.0, fallback_limit_a=120.0),
     "fallback_limit_a=120.0"),
    ("group limit NaN",
     lambda: GroupConfig(name="g", limit_a=math.nan), "limit_a=nan"),
    ("NaN CT reading (a dead clamp is None, not a number)",
     lambda: CtReading(currents_a=(math.nan, 0.0, 0.0), taken_at_s=0.0), "CT L1=nan"),
    ("connector wired outside a scenario C group's phase",
     lambda: Snapshot(now_s=0.0, group=group(phases=(L2,)),
                      chargers=(charger("c1", conn(1, wiring=single(L1))),)),
     "outside group garage's phases ['L2']"),
    ("duplicate group phases",
     lambda: GroupConfig(name="g", phases=(Phase.L1, Phase.L1)), "distinct"),
]


@pytest.mark.parametrize(("make", "says"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_refused_with_a_message_that_says_what(
    make: Callable[[], object], says: str
) -> None:
    with pytest.raises(InvalidInputError) as err:
        make()
    assert says in str(err.value)


def test_minimise_group_whose_members_cannot_all_get_6a_is_refused() -> None:
    g = group(limit_a=20.0, offline_strategy=OfflineStrategy.MINIMISE)
    four = tuple(charger(f"c{i}", conn(1)) for i in range(4))  # 24 A needed on each phase
    with pytest.raises(InfeasibleGroupError) as err:
        Snapshot(now_s=0.0, group=g, chargers=four)
    assert "Minimise needs 24.0 A on L1" in str(err.value)
    assert "static limit is 20.0 A" in str(err.value)
    Snapshot(now_s=0.0, group=g, chargers=four[:3])  # 18 A fits


def test_valid_inputs_construct() -> None:
    c = ConnectorInput(connector_id=2, wiring=(Phase.L3, Phase.L1, Phase.L2), max_current_a=16)
    assert c.loaded_phases() == (Phase.L3, Phase.L1, Phase.L2)
    ChargerInput(charger_id="io7-1", current_limit_a=63, connectors=(c,))
    assert conn(1, wiring=THREE, ev_lines=(False, True, False)).loaded_phases() == (Phase.L2,)
