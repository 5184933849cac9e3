"""The Charger Current Limit applied live (issue 14 §1): the limit applier's bound and
what the agent tells its master, without a restart; never anything raised at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.limits import LimitApplier, MasterLimits, OfferSource
from agent.service import Agent
from tests.web.support import charger_part


def _granted(applier: LimitApplier, amps: float, cycle: int, now: float) -> None:
    assert applier.on_limits(MasterLimits(term=1, cycle=cycle, valid_for_s=3.0,
                                          failsafe_current_a=0.0,
                                          currents_a={1: amps, 2: 0.0}), now)


def test_a_lower_charger_limit_caps_the_next_offer() -> None:
    applier = LimitApplier([1, 2], 32.0, {1: 32.0, 2: 32.0}, increase_interval_s=5.0)
    _granted(applier, 32.0, 1, 0.0)
    assert applier.offered(0.0)[1].current_a == 32.0
    applier.set_charger_limit(10.0)
    decision = applier.offered(0.1)[1]
    assert (decision.current_a, decision.source) == (10.0, OfferSource.CHARGER_LIMIT)
    assert applier.charger_limit_a == 10.0


def test_a_higher_charger_limit_is_paced_like_any_increase() -> None:
    applier = LimitApplier([1, 2], 10.0, {1: 32.0, 2: 32.0}, increase_interval_s=5.0)
    _granted(applier, 32.0, 1, 0.0)
    assert applier.offered(0.0)[1].current_a == 10.0
    applier.set_charger_limit(32.0)
    held = applier.offered(1.0)[1]
    assert (held.current_a, held.source) == (10.0, OfferSource.INCREASE_HELD)
    _granted(applier, 32.0, 2, 4.0)
    assert applier.offered(5.0)[1].current_a == 32.0


@pytest.mark.parametrize("amps", [5.9, 63.1, float("nan"), True])
def test_a_charger_limit_out_of_range_is_refused_and_changes_nothing(amps: float) -> None:
    applier = LimitApplier([1], 32.0, {1: 32.0})
    with pytest.raises(ValueError, match="6-63 A"):
        applier.set_charger_limit(amps)
    assert applier.charger_limit_a == 32.0


def test_the_agent_takes_the_limit_and_its_hello_says_it(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    state = tmp_path / "state"
    path.write_text(charger_part() + f'[sim]\nevs = "none"\n[state]\ndir = "{state}"\n')
    agent = Agent(load_agent_config(path))
    try:
        agent.set_charger_limit(10.0)
        assert agent.applier.charger_limit_a == 10.0
        assert agent.config.charger_limit_a == 10.0
        assert agent.hello().charger_current_limit_a == 10.0
    finally:
        agent.audit.close()
