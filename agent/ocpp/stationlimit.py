"""The back office's limit on the whole group: this charger's ChargePointMaxProfile. Pure.

OCPP 1.6 Local Controller pattern: the CSMS sets a ChargePointMaxProfile on connector 0
of the charger that leads the group, and the group's master bounds the whole group with
it (issue 12 §4). The agent evaluates the profile at every step and reports the answer in
AgentState.station_limit; it never clamps it to this charger's own ratings (that is
agent.ocpp.profiles rule 3, for the charger itself), since it bounds the group.

 1. Of the ChargePointMaxProfiles installed (connector 0 only, never Relative: profiles
    rule 1), the one with the highest stackLevel in force now applies (OCPP 1.6 3.13.2);
    it has no transaction, so its schedule is anchored at the instant asked about
    (schedule rule 4). None in force: no station limit.
 2. A: the period's limit as sent, per phase. W: limit / (230 V x numberPhases), with
    numberPhases 3 when absent (OCPP 1.6 section 7, ChargingSchedulePeriod): the nominal
    phase voltage and the phases the back office says it counted, not this charger's
    wiring, since the limit is the site's. Rounded down to 0.1 A.
 3. `valid_until` is the first instant after now at which rule 1-2's answer changes (a
    period boundary, a profile's start, end or validTo), looked for over a week (a Weekly
    recurrence); None when it does not change within that: until withdrawn.
 4. The source names the profile: "back office (ChargePointMaxProfile 12)".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agent.limits import floor_to_step_da
from agent.ocpp.profiles import DEFAULT_PHASES, NOMINAL_VOLTAGE_V
from agent.ocpp.schedule import (
    ChargingProfile,
    Purpose,
    RateUnit,
    changes_between,
    period_at,
)

HORIZON = timedelta(weeks=1)  # rule 3: a Weekly recurrence's length


@dataclass(frozen=True, slots=True)
class StationLimit:
    """The group's limit from the back office now: A per phase, until when, from what."""

    limit_a: float
    valid_until: datetime | None
    source: str


def _at(profiles: list[ChargingProfile], t: datetime) -> tuple[float, int] | None:
    """Rules 1-2 at `t`: (A per phase, profile id) or None."""
    for p in sorted(profiles, key=lambda p: p.stack_level, reverse=True):
        period = period_at(p, t, anchor=t)
        if period is None:
            continue
        if p.schedule.unit is RateUnit.A:
            amps = period.limit
        else:
            amps = period.limit / (NOMINAL_VOLTAGE_V * (period.number_phases or DEFAULT_PHASES))
        return floor_to_step_da(amps) / 10, p.profile_id
    return None


def station_limit(entries: Iterable[tuple[int, ChargingProfile]], now: datetime
                  ) -> StationLimit | None:
    """The ChargePointMaxProfile's limit on the group at `now` (aware), or None (rules
    1-4). `entries`: the installed profiles as (connector id, profile)."""
    if now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    profiles = [p for cid, p in entries if cid == 0 and p.purpose is Purpose.CHARGE_POINT_MAX]
    answer = _at(profiles, now)
    if answer is None:
        return None
    points: set[datetime] = set()
    for p in profiles:
        points |= changes_between(p, now, now + HORIZON, anchor=now)
    until = next((t for t in sorted(points) if _at(profiles, t) != answer), None)
    return StationLimit(limit_a=answer[0], valid_until=until,
                        source=f"back office (ChargePointMaxProfile {answer[1]})")
