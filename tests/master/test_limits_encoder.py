"""The master's Limits encoder (issue 15, master.wire.LimitsEncoder): what it sends is
`wire.limits_message` to the byte, whether a charger's tuple is new, kept or changed."""

from __future__ import annotations

import random
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from master import wire
from master.allocation import Phase, Reason
from master.control import CycleResult
from master.statusview import ConnectorLimit, CycleFacts


def result(term: int, cycle: int) -> CycleResult:
    return CycleResult(term=term, cycle=cycle, now_s=float(cycle), allocation=None,
                       limits={}, failsafe_current_a=6.0, lease_ms=3000, holding=False,
                       facts=cast(CycleFacts, None))


limit = st.builds(ConnectorLimit, connector_id=st.integers(1, 2),
                  current_a=st.sampled_from([0.0, 6.0, 12.3, 32.0]),
                  reason=st.sampled_from(list(Reason)),
                  limiting_phase=st.sampled_from([None, *Phase]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.lists(limit, min_size=1,
                                                                   max_size=2)),
                min_size=1, max_size=20),
       st.integers(0, 2**32))
def test_the_encoder_sends_what_limits_message_builds(
        steps: list[tuple[str, list[ConnectorLimit]]], seed: int) -> None:
    rng = random.Random(seed)
    enc = wire.LimitsEncoder()
    held: dict[str, tuple[ConnectorLimit, ...]] = {}
    for cycle, (cid, lims) in enumerate(steps, start=1):
        # master.control hands back the very tuple while its values are equal: half the
        # time here; else a new tuple (equal or not)
        limits = held[cid] if cid in held and rng.random() < 0.5 else tuple(lims)
        held[cid] = limits
        if rng.random() < 0.1:
            enc.forget(cid)
        r, lease = result(term=1 + cycle // 7, cycle=cycle), rng.choice([1000, 2500, 3000])
        got = enc.message(cid, r, limits, 1000 * cycle + 17, lease_ms=lease)
        want = wire.limits_message(r, limits, 1000 * cycle + 17, lease_ms=lease)
        assert got == want
        assert got.SerializeToString(deterministic=True) == \
            want.SerializeToString(deterministic=True)
