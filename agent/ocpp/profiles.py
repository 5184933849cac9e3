"""OCPP 1.6 smart charging: the installed charging profiles of one charger, and their limit.

`ProfileSet` holds what SetChargingProfile installed (connector 0 = the whole charger,
1..N = its connectors) and answers, for a connector at an instant, the composite limit in
A (`limit_a`, fed to the limit applier as the connector's local limit and reported to the
master as its maximum) and the GetCompositeSchedule answer (`composite_schedule`). It is
pure: no clock, `now` arrives as an aware UTC datetime; the shell persists it with
agent.ocpp.profilestore after every change. One profile's maths is in agent.ocpp.schedule.

Rules (OCPP 1.6 section 3.13 Smart Charging, 5.5 ClearChargingProfile, 5.7
GetCompositeSchedule, 5.16 SetChargingProfile):
 1. Install (5.16): a connector the charger does not have is Rejected. A
    ChargePointMaxProfile goes on connector 0 only and is never Relative (there is no
    transaction on connector 0). A TxProfile goes on a connector > 0 with a transaction
    active there, and its transactionId, if given, must be that transaction's; without
    one it is bound to it. Above `max_stack_level`, `max_periods` periods or
    `max_profiles` installed: Rejected. Rejected changes nothing.
 2. Replacement (5.16): a profile with the same chargingProfileId (anywhere), or the same
    purpose and stackLevel on the same connector, is replaced by the new one.
 3. A profile asking more than the hardware allows (the connector's hard max, for
    connector 0 the charger's) is installed as sent; `InstallResult.clamped_to_a` says
    where its limits will be held, so the shell can log it, and `limit_a` reports
    `clamped=True` while that happens.
 4. Purposes (3.13.1, 3.13.3): for a connector, a TxProfile of the running transaction
    overrides every TxDefaultProfile; TxDefaultProfiles on connector 0 apply to every
    connector. Within one purpose the highest stackLevel in force wins (3.13.2); between a
    TxDefaultProfile on connector 0 and one on the connector at the same stackLevel, the
    connector's own wins. When a profile's schedule has ended, the next one down applies.
 5. The ChargePointMaxProfile in force caps the whole charger: each connector's limit is
    min(ChargePointMax, Tx or TxDefault), and `LimitDecision.charger_max_a` carries the
    charger-wide cap so the shell shares it over the connectors (the limit applier's
    Charger Current Limit rule), since connectors together must not exceed it.
 6. Units: W becomes A as W / (voltage x phases), phases = the period's numberPhases
    (3 when absent, 3.13 and section 7 ChargingSchedulePeriod) but no more than the
    connector is wired for; A values are per phase. Limits are rounded down to 0.1 A.
 7. Clear (5.5): with an id, that profile only; otherwise every profile matching all the
    given criteria (none given: all). True (Accepted) if any was removed, else Unknown.
    A transaction's end removes the TxProfiles of that connector.
 8. Composite (5.7): connector N > 0 = rules 4-5 clamped to its hard max (the local
    limit); connector 0 = ChargePointMax combined with the TxDefaultProfiles on
    connector 0. Where no profile sets a limit, the hard max is the limit. Periods start
    relative to the (whole-second) start and equal neighbours are merged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from agent.limits import floor_to_step_da
from agent.ocpp.schedule import (
    ChargingProfile,
    Kind,
    ProfileError,
    Purpose,
    RateUnit,
    SchedulePeriod,
    changes_between,
    format_time,
    parse_profile,
    period_at,
    to_dict,
)

__all__ = ["ChargingProfile", "InstallResult", "LimitDecision", "ProfileError", "ProfileSet",
           "Purpose", "RateUnit", "parse_profile", "to_dict"]

NOMINAL_VOLTAGE_V = 230.0  # UK/EU nominal phase voltage (BS EN 60038)
DEFAULT_PHASES = 3  # OCPP 1.6 ChargingSchedulePeriod: numberPhases 3 when absent
# Defaults of the 1.6 Smart Charging configuration keys (section 9.4), as agent.ocpp.configkeys
# declares them; the shell passes the configured values in.
MAX_STACK_LEVEL = 8  # ChargeProfileMaxStackLevel
MAX_PERIODS = 24  # ChargingScheduleMaxPeriods: hourly steps over a day
MAX_PROFILES = 10  # MaxChargingProfilesInstalled
MAX_COMPOSITE_S = 31 * 86400  # GetCompositeSchedule duration we answer: a month


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallResult:
    """SetChargingProfile's outcome: Accepted or Rejected (with why), what it replaced
    (rule 2) and, if the profile asks more than the hardware allows, where it is held."""

    accepted: bool
    reason: str = ""
    replaced_ids: tuple[int, ...] = ()
    clamped_to_a: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitDecision:
    """A connector's composite limit now (rules 4-6) and which profile set it."""

    limit_a: float
    purpose: Purpose
    profile_id: int
    clamped: bool  # the profile asked more than the connector's hard max (rule 3)
    charger_max_a: float | None  # the ChargePointMaxProfile's cap for the charger (rule 5)


@dataclass(frozen=True, slots=True)
class _Piece:
    """One profile's limit at an instant, in A, with the phases it is counted over."""

    limit_a: float
    phases: int
    profile: ChargingProfile


class ProfileSet:
    """The charging profiles installed on one charger (module rules 1-8)."""

    def __init__(self, *, hard_max_a: Mapping[int, float], voltage_v: float = NOMINAL_VOLTAGE_V,
                 phases: Mapping[int, int] | None = None, max_stack_level: int = MAX_STACK_LEVEL,
                 max_periods: int = MAX_PERIODS, max_profiles: int = MAX_PROFILES) -> None:
        """`hard_max_a`: per connector id (1..N) its hard max, A; key 0, optional, the
        charger's (default: the highest connector's). `phases`: per connector (and 0) how
        many phases it is wired for, default 3."""
        connectors = sorted(c for c in hard_max_a if c != 0)
        if not connectors or any(isinstance(c, bool) or c < 0 for c in hard_max_a):
            raise ValueError(f"hard_max_a needs connector ids >= 1, got {sorted(hard_max_a)}")
        if any(not (math.isfinite(a) and a > 0) for a in hard_max_a.values()):
            raise ValueError(f"hard max currents must be > 0 A, got {dict(hard_max_a)}")
        self._hard_max_a = {0: max(hard_max_a[c] for c in connectors), **hard_max_a}
        self._phases = dict.fromkeys([0, *connectors], DEFAULT_PHASES)
        for cid, n in (phases or {}).items():
            if cid not in self._phases or n not in (1, 2, 3):
                raise ValueError(f"phases: connector {cid} must exist and have 1-3, got {n}")
            self._phases[cid] = n
        if not math.isfinite(voltage_v) or not 100.0 <= voltage_v <= 400.0:
            raise ValueError(f"voltage_v must be 100-400 V, got {voltage_v}")
        self._voltage_v = float(voltage_v)
        self._max_stack_level, self._max_periods = max_stack_level, max_periods
        self._max_profiles = max_profiles
        self._installed: dict[int, tuple[int, ChargingProfile]] = {}  # id -> (connector, p)

    @property
    def connector_ids(self) -> tuple[int, ...]:
        return tuple(c for c in self._phases if c != 0)

    def entries(self) -> list[tuple[int, ChargingProfile]]:
        """Every installed profile as (connector id, profile), in install order."""
        return list(self._installed.values())

    # -- changes ---------------------------------------------------------------------------

    def install(self, connector_id: int, profile: ChargingProfile, *,
                active_transaction_id: int | None) -> InstallResult:
        """SetChargingProfile (rules 1-3). `active_transaction_id`: the transaction running
        on `connector_id` now, if any. Rejected leaves the set unchanged."""
        problem = self._rejection(connector_id, profile, active_transaction_id)
        replaced: tuple[int, ...] = ()
        if not problem:
            if profile.purpose is Purpose.TX and profile.transaction_id is None:
                profile = replace(profile, transaction_id=active_transaction_id)
            replaced = tuple(pid for pid, (cid, p) in self._installed.items()
                             if pid == profile.profile_id or (
                                 cid == connector_id and p.purpose is profile.purpose
                                 and p.stack_level == profile.stack_level))
            if len(self._installed) - len(replaced) >= self._max_profiles:
                problem = f"{self._max_profiles} profiles are installed already (the maximum)"
        if problem:
            return InstallResult(accepted=False, reason=problem)
        for pid in replaced:
            del self._installed[pid]
        self._installed[profile.profile_id] = (connector_id, profile)
        return InstallResult(accepted=True, replaced_ids=replaced,
                             clamped_to_a=self._clamp_of(connector_id, profile))

    def restore(self, entries: Iterable[tuple[int, ChargingProfile]]
                ) -> list[tuple[int, ChargingProfile]]:
        """Put back persisted profiles (after a restart) without the transaction check of
        rule 1; returns those that no longer fit (e.g. a connector removed), not restored."""
        dropped = []
        for cid, profile in entries:
            tx = profile.transaction_id if profile.purpose is Purpose.TX else None
            if self._rejection(cid, profile, tx):
                dropped.append((cid, profile))
            else:
                self._installed[profile.profile_id] = (cid, profile)
        return dropped

    def clear(self, *, profile_id: int | None = None, connector_id: int | None = None,
              purpose: Purpose | None = None, stack_level: int | None = None) -> bool:
        """ClearChargingProfile (rule 7): True = Accepted (something removed), False = Unknown."""
        def matches(cid: int, p: ChargingProfile) -> bool:
            if profile_id is not None:
                return p.profile_id == profile_id
            return ((connector_id is None or cid == connector_id)
                    and (purpose is None or p.purpose is purpose)
                    and (stack_level is None or p.stack_level == stack_level))
        gone = [pid for pid, (cid, p) in self._installed.items() if matches(cid, p)]
        for pid in gone:
            del self._installed[pid]
        return bool(gone)

    def transaction_ended(self, connector_id: int) -> tuple[int, ...]:
        """Remove the TxProfiles of `connector_id` (rule 7); returns their ids."""
        gone = tuple(pid for pid, (cid, p) in self._installed.items()
                     if cid == connector_id and p.purpose is Purpose.TX)
        for pid in gone:
            del self._installed[pid]
        return gone

    def _rejection(self, cid: int, p: ChargingProfile, tx_id: int | None) -> str:
        if cid not in self._phases:
            return f"connector {cid} does not exist (this charger has {self.connector_ids})"
        if p.purpose is Purpose.CHARGE_POINT_MAX and cid != 0:
            return "a ChargePointMaxProfile can only be set on connector 0"
        if p.purpose is Purpose.CHARGE_POINT_MAX and p.kind is Kind.RELATIVE:
            return "a ChargePointMaxProfile cannot be Relative"
        if p.purpose is Purpose.TX:
            if cid == 0:
                return "a TxProfile needs a connector > 0"
            if tx_id is None:
                return f"no transaction is active on connector {cid}"
            if p.transaction_id is not None and p.transaction_id != tx_id:
                return f"transactionId {p.transaction_id} is not the active one ({tx_id})"
        if p.stack_level > self._max_stack_level:
            return f"stackLevel {p.stack_level} is above {self._max_stack_level}"
        if len(p.schedule.periods) > self._max_periods:
            return f"{len(p.schedule.periods)} periods is more than {self._max_periods}"
        return ""

    def _clamp_of(self, cid: int, p: ChargingProfile) -> float | None:
        cap = self._hard_max_a[cid]
        if cid == 0 and p.purpose is Purpose.TX_DEFAULT:  # applies to every connector
            cap = min(self._hard_max_a[c] for c in self.connector_ids)
        asks = max(self._piece(cid, p, q).limit_a for q in p.schedule.periods)
        return cap if asks > cap else None

    # -- answers ----------------------------------------------------------------------------

    def limit_a(self, connector_id: int, now: datetime, *, tx_start: datetime | None,
                tx_id: int | None) -> LimitDecision | None:
        """The composite limit of connector `connector_id` (>= 1) at `now` (rules 4-6), or
        None if no profile sets one. `tx_start`/`tx_id`: its running transaction, if any."""
        if connector_id not in self.connector_ids:
            raise ValueError(f"connector {connector_id} does not exist")
        _check_aware(now=now, tx_start=tx_start)
        anchor = now if tx_start is None else tx_start
        best = self._lowest(connector_id, now, anchor, tx_id, cp_anchor=now)
        if best is None:
            return None
        cap = self._max_piece(now, now)
        hard_a = self._hard_max_a[connector_id]
        return LimitDecision(limit_a=_floor_a(min(best.limit_a, hard_a)),
                             purpose=best.profile.purpose, profile_id=best.profile.profile_id,
                             clamped=best.limit_a > hard_a,
                             charger_max_a=None if cap is None else _floor_a(cap.limit_a))

    def composite_schedule(self, connector_id: int, start: datetime, duration_s: int,
                           unit: RateUnit | None = None, *, tx_start: datetime | None = None,
                           tx_id: int | None = None) -> dict[str, Any] | None:
        """GetCompositeSchedule.conf's chargingSchedule (rule 8) from `start` for
        `duration_s`, in `unit` (default A); None (Rejected) for an unknown connector.
        Raises ProfileError for a duration out of 1..MAX_COMPOSITE_S."""
        if isinstance(duration_s, bool) or not isinstance(duration_s, int) or not (
                0 < duration_s <= MAX_COMPOSITE_S):
            raise ProfileError("duration", f"must be 1-{MAX_COMPOSITE_S} s, got {duration_s!r}")
        if connector_id not in self._phases:
            return None
        _check_aware(start=start, tx_start=tx_start)
        unit = unit or RateUnit.A
        start = start.replace(microsecond=0)
        end = start + timedelta(seconds=duration_s)
        anchor = start if tx_start is None else tx_start
        points = {start}
        for cid, p in self._installed.values():
            if self._relevant(connector_id, cid, p, tx_id):
                points |= changes_between(p, start, end, anchor=anchor)
        periods: list[dict[str, Any]] = []
        for t in sorted(points):
            amps, phases = self._composite_at(connector_id, t, anchor, tx_id, cp_anchor=start)
            limit = (_floor_a(amps) if unit is RateUnit.A
                     else float(math.floor(round(amps * self._voltage_v * phases, 6))))
            offset_s = int((t - start).total_seconds())
            if periods and periods[-1]["startPeriod"] == offset_s:
                periods.pop()  # two changes within one second: the later one holds
            if periods and (periods[-1]["limit"], periods[-1]["numberPhases"]) == (limit, phases):
                continue
            periods.append({"startPeriod": offset_s, "limit": limit, "numberPhases": phases})
        return {"duration": duration_s, "startSchedule": format_time(start),
                "chargingRateUnit": unit.value, "chargingSchedulePeriod": periods}

    def _composite_at(self, cid: int, t: datetime, anchor: datetime, tx_id: int | None, *,
                      cp_anchor: datetime) -> tuple[float, int]:
        """Rule 8 at `t`: the limit in A (not rounded) and the phases it is counted over."""
        if cid == 0:
            tx_default_0 = self._top(0, t, anchor, [
                (c, p) for c, p in self._installed.values()
                if c == 0 and p.purpose is Purpose.TX_DEFAULT])
            found = [p for p in (tx_default_0, self._max_piece(t, cp_anchor)) if p is not None]
            low = min(found, key=lambda p: p.limit_a) if found else None
        else:
            low = self._lowest(cid, t, anchor, tx_id, cp_anchor=cp_anchor)
        hard_a = self._hard_max_a[cid]
        if low is None or low.limit_a >= hard_a:
            return hard_a, self._phases[cid]
        return low.limit_a, low.phases

    def _relevant(self, target: int, cid: int, p: ChargingProfile, tx_id: int | None) -> bool:
        """Whether profile `p` on connector `cid` can shape `target`'s composite."""
        if p.purpose is Purpose.CHARGE_POINT_MAX or (cid == 0 and p.purpose is Purpose.TX_DEFAULT):
            return True
        return target != 0 and cid == target and (
            p.purpose is Purpose.TX_DEFAULT or (tx_id is not None and p.transaction_id == tx_id))

    def _lowest(self, cid: int, t: datetime, anchor: datetime, tx_id: int | None, *,
                cp_anchor: datetime) -> _Piece | None:
        """Rules 4-5 for connector `cid` > 0: min(ChargePointMax, Tx or else TxDefault)."""
        tx = None
        if tx_id is not None:
            tx = self._top(cid, t, anchor, [
                (c, p) for c, p in self._installed.values()
                if c == cid and p.purpose is Purpose.TX and p.transaction_id == tx_id])
        if tx is None:
            tx = self._top(cid, t, anchor, [
                (c, p) for c, p in self._installed.values()
                if c in (0, cid) and p.purpose is Purpose.TX_DEFAULT])
        found = [p for p in (tx, self._max_piece(t, cp_anchor)) if p is not None]
        return min(found, key=lambda p: p.limit_a) if found else None

    def _max_piece(self, t: datetime, anchor: datetime) -> _Piece | None:
        """The ChargePointMaxProfile in force at `t`, counted for the whole charger; it has
        no transaction, so `anchor` is the instant asked about (schedule rule 4)."""
        return self._top(0, t, anchor, [(c, p) for c, p in self._installed.values()
                                   if p.purpose is Purpose.CHARGE_POINT_MAX])

    def _top(self, cid: int, t: datetime, anchor: datetime,
             candidates: list[tuple[int, ChargingProfile]]) -> _Piece | None:
        """Rule 4: of (installed on, profile) pairs, the highest stackLevel in force at `t`,
        at equal levels the one installed on `cid`; its limit counted for connector `cid`."""
        for _, p in sorted(candidates, key=lambda e: (e[1].stack_level, e[0] == cid),
                           reverse=True):
            period = period_at(p, t, anchor=anchor)
            if period is not None:
                return self._piece(cid, p, period)
        return None

    def _piece(self, cid: int, p: ChargingProfile, q: SchedulePeriod) -> _Piece:
        phases = min(q.number_phases or DEFAULT_PHASES, self._phases[cid])
        if p.schedule.unit is RateUnit.A:
            return _Piece(q.limit, phases, p)
        return _Piece(q.limit / (self._voltage_v * phases), phases, p)


def _check_aware(**times: datetime | None) -> None:
    for name, t in times.items():
        if t is not None and t.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got {t!r}")


def _floor_a(amps: float) -> float:
    """Rule 6: round down to 0.1 A (never up past a limit)."""
    return floor_to_step_da(amps) / 10
