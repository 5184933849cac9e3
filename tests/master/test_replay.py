"""io7-sim replay: a session log on a site, the what-ifs, and the command line.

Short logs (an hour or two of virtual time) keep these fast; the example of
deploy/sessions is replayed once for the whole file.
"""

from __future__ import annotations

import pytest

from master.sim.scenario import ScenarioError, parse_scenario

SITE = {"site": {"fuse_a": 63, "start": "07:00", "end": "12:00"},
        "groups": [{"name": "g", "limit_a": 63, "fallback_limit_a": 20}],
        "chargers": [{"id": "c", "group": "g"}]}


def test_a_car_cannot_arrive_on_a_socket_the_second_its_predecessor_leaves() -> None:
    # The run plugs arrivals before it unplugs departures, and the socket's machine must
    # see it empty for one step: a swap within the same second lost the first session
    # and left the second car with nothing. One second apart is the least the run needs.
    swap = [{"at": "08:00", "charger": "c", "connector": 1, "departure": "08:30"},
            {"at": "08:30", "charger": "c", "connector": 1, "departure": "09:00"}]
    with pytest.raises(ScenarioError, match="still there"):
        parse_scenario({**SITE, "arrivals": swap}, "x.toml")
    swap[1]["at"] = "08:30:01"
    assert len(parse_scenario({**SITE, "arrivals": swap}, "x.toml").arrivals) == 2
