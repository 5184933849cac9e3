"""One OCPP 1.6 charging profile: its validated type, its wire form, and its time maths.

A `ChargingProfile` (OCPP 1.6 section 7, ChargingProfile / ChargingSchedule /
ChargingSchedulePeriod) is built from the csChargingProfiles JSON object with
`parse_profile` and written back with `to_dict`; `parse_profile(to_dict(p)) == p`. The
stack of profiles, purposes and the composite schedule live in agent.ocpp.profiles; this
module answers two questions about a single profile: which period is in force at an
instant (`period_at`), and at which instants that answer can change (`changes_between`).

Rules:
 1. Every field is checked where it is built (`__post_init__`): a bad one raises
    `ProfileError` naming the wire field (`chargingSchedule.chargingSchedulePeriod[1].limit`)
    and why, so an invalid profile cannot exist. Times must carry a UTC offset (RFC 3339,
    as OCPP 1.6 section 3.10 asks); they are kept in UTC.
 2. The first period starts at 0 s and periods start strictly later one after the other
    (OCPP 1.6 section 7, ChargingSchedule). A limit is >= 0 in the schedule's unit (A or W);
    numberPhases is 1-3. transactionId is only allowed on a TxProfile.
 3. A profile is in force from validFrom (inclusive) to validTo (exclusive), when given.
 4. The schedule starts at: Absolute: startSchedule, or without it the anchor; Relative:
    the anchor (startSchedule is ignored); Recurring: startSchedule + k x (1 day or
    1 week), k the whole number of recurrences between startSchedule and the instant
    (the recurrence extends both ways; validFrom/validTo bound it). The anchor is the
    start of the transaction, or, with no transaction, the instant asked about
    (OCPP 1.6 section 7, ChargingProfileKindType: relative to "a situation-specific start
    point"; with no transaction the limit is the one a session starting now would get).
 5. The schedule lasts `duration` seconds, or without it for ever (Recurring: until the
    next recurrence; a longer duration is cut there). Before its start or after its end
    the profile sets nothing, so the next lower stack level applies (section 3.13.2).
 6. The period in force is the last one whose startPeriod is not after the instant.
    minChargingRate is kept and sent back but never raises a limit: it is the EV's hint.
"""

from __future__ import annotations

import decimal
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from agent.errors import PeerError

_E = TypeVar("_E", bound=enum.Enum)

DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)


class ProfileError(PeerError, ValueError):
    """The CSMS sent a charging profile (or request) that does not validate.

    `field` is the wire field path (camelCase, as in the OCPP JSON), `problem` why.
    The shell answers the CALL with a CallError; nothing is installed or changed.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(peer="csms", problem=f"{field}: {problem}")
        self.problem = problem  # without the field, for re-wrapping

    def within(self, prefix: str) -> ProfileError:
        """The same error with `prefix` put before its field path."""
        return ProfileError(f"{prefix}.{self.field}" if self.field else prefix, self.problem)


class Purpose(enum.Enum):
    """ChargingProfilePurposeType (OCPP 1.6 section 3.13.1)."""

    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(enum.Enum):
    """ChargingProfileKindType."""

    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(enum.Enum):
    """RecurrencyKindType, with the length of one recurrence."""

    DAILY = "Daily"
    WEEKLY = "Weekly"

    @property
    def length(self) -> timedelta:
        return DAY if self is Recurrency.DAILY else WEEK


class RateUnit(enum.Enum):
    """ChargingRateUnitType: amperes per phase, or watts."""

    A = "A"
    W = "W"


def _check_int(field: str, value: object, *, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(field, f"must be a whole number, got {value!r}")
    if lo is not None and value < lo:
        raise ProfileError(field, f"must be >= {lo}, got {value}")
    return value


def _check_number(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal) or (
            not math.isfinite(value)):
        raise ProfileError(field, f"must be a finite number, got {value!r}")
    if value < 0:
        raise ProfileError(field, f"must be >= 0, got {value}")
    return float(value)


def _check_time(field: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ProfileError(field, f"must be a date-time with a UTC offset, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulePeriod:
    """ChargingSchedulePeriod: from `start_period_s` after the schedule start, `limit`."""

    start_period_s: int
    limit: float
    number_phases: int | None = None

    def __post_init__(self) -> None:
        _check_int("startPeriod", self.start_period_s, lo=0)
        object.__setattr__(self, "limit", _check_number("limit", self.limit))
        if self.number_phases is not None:
            _check_int("numberPhases", self.number_phases, lo=1)
            if self.number_phases > 3:  # IEC 61851: a connector has at most 3 phases
                raise ProfileError("numberPhases", f"must be 1-3, got {self.number_phases}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingSchedule:
    """ChargingSchedule: the periods, in `unit`, and how long they last."""

    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    duration_s: int | None = None
    start_schedule: datetime | None = None
    min_charging_rate: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.unit, RateUnit):
            raise ProfileError("chargingRateUnit", f"must be A or W, got {self.unit!r}")
        if not self.periods:
            raise ProfileError("chargingSchedulePeriod", "must hold at least one period")
        if self.periods[0].start_period_s != 0:
            first = self.periods[0].start_period_s
            raise ProfileError("chargingSchedulePeriod[0].startPeriod",
                               f"the first period starts at 0, got {first}")
        for i in range(1, len(self.periods)):
            if self.periods[i].start_period_s <= self.periods[i - 1].start_period_s:
                raise ProfileError(f"chargingSchedulePeriod[{i}].startPeriod",
                                   "must be after the previous period's startPeriod")
        if self.duration_s is not None:
            _check_int("duration", self.duration_s, lo=1)
        if self.start_schedule is not None:
            _check_time("startSchedule", self.start_schedule)
            object.__setattr__(self, "start_schedule", self.start_schedule.astimezone(UTC))
        if self.min_charging_rate is not None:
            rate = _check_number("minChargingRate", self.min_charging_rate)
            object.__setattr__(self, "min_charging_rate", rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingProfile:
    """ChargingProfile (csChargingProfiles) as the CSMS sent it, validated (rules 1-2)."""

    profile_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: ChargingSchedule
    transaction_id: int | None = None
    recurrency: Recurrency | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        _check_int("chargingProfileId", self.profile_id)
        _check_int("stackLevel", self.stack_level, lo=0)
        if not isinstance(self.purpose, Purpose):
            raise ProfileError("chargingProfilePurpose", f"unknown purpose {self.purpose!r}")
        if not isinstance(self.kind, Kind):
            raise ProfileError("chargingProfileKind", f"unknown kind {self.kind!r}")
        if self.transaction_id is not None:
            _check_int("transactionId", self.transaction_id)
            if self.purpose is not Purpose.TX:
                raise ProfileError("transactionId", "is only allowed on a TxProfile")
        if self.kind is Kind.RECURRING:
            if self.recurrency is None:
                raise ProfileError("recurrencyKind", "is required for a Recurring profile")
            if self.schedule.start_schedule is None:
                raise ProfileError("chargingSchedule.startSchedule",
                                   "is required for a Recurring profile")
        for name, field in (("valid_from", "validFrom"), ("valid_to", "validTo")):
            value = getattr(self, name)
            if value is not None:
                _check_time(field, value)
                object.__setattr__(self, name, value.astimezone(UTC))
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ProfileError("validTo", "must be after validFrom")


# -- wire form -------------------------------------------------------------------------


def _camel(data: Any) -> Any:
    """`data` with every mapping key in camelCase (snake_case keys converted)."""
    if isinstance(data, Mapping):
        return {(k.split("_")[0] + "".join(w[:1].upper() + w[1:] for w in k.split("_")[1:])
                 if isinstance(k, str) else k): _camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_camel(v) for v in data]
    return data


def _get(d: Mapping[str, Any], key: str, *, required: bool) -> Any:
    if key not in d or d[key] is None:
        if required:
            raise ProfileError(key, "is required")
        return None
    return d[key]


def _enum(cls: type[_E], field: str, value: Any) -> _E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise ProfileError(field, f"must be one of {allowed}, got {value!r}") from None


def _time(field: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProfileError(field, f"must be an RFC 3339 date-time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ProfileError(field, f"is not an RFC 3339 date-time: {value!r}") from None
    if parsed.utcoffset() is None:
        raise ProfileError(field, f"needs a UTC offset (e.g. Z), got {value!r}")
    return parsed


def _period(d: Any) -> SchedulePeriod:
    if not isinstance(d, Mapping):
        raise ProfileError("", f"must be an object, got {d!r}")
    return SchedulePeriod(start_period_s=_get(d, "startPeriod", required=True),
                          limit=_get(d, "limit", required=True),
                          number_phases=_get(d, "numberPhases", required=False))


def _schedule(d: Any) -> ChargingSchedule:
    if not isinstance(d, Mapping):
        raise ProfileError("", f"must be an object, got {d!r}")
    raw = _get(d, "chargingSchedulePeriod", required=True)
    if not isinstance(raw, list):
        raise ProfileError("chargingSchedulePeriod", f"must be a list, got {raw!r}")
    periods = []
    for i, p in enumerate(raw):
        try:
            periods.append(_period(p))
        except ProfileError as exc:
            raise exc.within(f"chargingSchedulePeriod[{i}]") from None
    unit = _enum(RateUnit, "chargingRateUnit", _get(d, "chargingRateUnit", required=True))
    return ChargingSchedule(
        unit=unit, periods=tuple(periods),
        duration_s=_get(d, "duration", required=False),
        start_schedule=_time("startSchedule", _get(d, "startSchedule", required=False)),
        min_charging_rate=_get(d, "minChargingRate", required=False))


def parse_profile(d: Mapping[str, Any]) -> ChargingProfile:
    """The csChargingProfiles object of SetChargingProfile.req (or RemoteStartTransaction's
    chargingProfile) as a `ChargingProfile`. Keys may be camelCase as on the wire or
    snake_case as the ocpp library hands them to `@on` handlers; limits float or Decimal.
    Raises `ProfileError` naming the (camelCase) field."""
    if not isinstance(d, Mapping):
        raise ProfileError("csChargingProfiles", f"must be an object, got {d!r}")
    d = _camel(d)
    raw_recurrency = _get(d, "recurrencyKind", required=False)
    raw_schedule = _get(d, "chargingSchedule", required=True)
    try:
        schedule = _schedule(raw_schedule)
    except ProfileError as exc:
        raise exc.within("chargingSchedule") from None
    return ChargingProfile(
        profile_id=_get(d, "chargingProfileId", required=True),
        stack_level=_get(d, "stackLevel", required=True),
        purpose=_enum(Purpose, "chargingProfilePurpose",
                      _get(d, "chargingProfilePurpose", required=True)),
        kind=_enum(Kind, "chargingProfileKind", _get(d, "chargingProfileKind", required=True)),
        schedule=schedule,
        transaction_id=_get(d, "transactionId", required=False),
        recurrency=(None if raw_recurrency is None
                    else _enum(Recurrency, "recurrencyKind", raw_recurrency)),
        valid_from=_time("validFrom", _get(d, "validFrom", required=False)),
        valid_to=_time("validTo", _get(d, "validTo", required=False)))


def format_time(t: datetime) -> str:
    """`t` as an RFC 3339 UTC string with a Z, as OCPP 1.6 sends date-times."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_dict(profile: ChargingProfile) -> dict[str, Any]:
    """The profile as its OCPP JSON object (camelCase, absent fields left out)."""
    s = profile.schedule
    periods: list[dict[str, Any]] = []
    for p in s.periods:
        entry: dict[str, Any] = {"startPeriod": p.start_period_s, "limit": p.limit}
        if p.number_phases is not None:
            entry["numberPhases"] = p.number_phases
        periods.append(entry)
    schedule: dict[str, Any] = {"chargingRateUnit": s.unit.value,
                                "chargingSchedulePeriod": periods}
    if s.duration_s is not None:
        schedule["duration"] = s.duration_s
    if s.start_schedule is not None:
        schedule["startSchedule"] = format_time(s.start_schedule)
    if s.min_charging_rate is not None:
        schedule["minChargingRate"] = s.min_charging_rate
    out: dict[str, Any] = {"chargingProfileId": profile.profile_id,
                           "stackLevel": profile.stack_level,
                           "chargingProfilePurpose": profile.purpose.value,
                           "chargingProfileKind": profile.kind.value}
    if profile.transaction_id is not None:
        out["transactionId"] = profile.transaction_id
    if profile.recurrency is not None:
        out["recurrencyKind"] = profile.recurrency.value
    if profile.valid_from is not None:
        out["validFrom"] = format_time(profile.valid_from)
    if profile.valid_to is not None:
        out["validTo"] = format_time(profile.valid_to)
    out["chargingSchedule"] = schedule
    return out


# -- time maths (rules 3-6) --------------------------------------------------------------


def _span(profile: ChargingProfile) -> timedelta | None:
    s = profile.schedule
    span = None if s.duration_s is None else timedelta(seconds=s.duration_s)
    if profile.kind is Kind.RECURRING and profile.recurrency is not None:
        length = profile.recurrency.length
        span = length if span is None else min(span, length)
    return span


def _starts(profile: ChargingProfile, lo: datetime, hi: datetime, anchor: datetime
            ) -> list[datetime]:
    """The schedule starts (rule 4) of the instances that can be in force in [lo, hi]."""
    s = profile.schedule
    if profile.kind is Kind.RECURRING:
        assert s.start_schedule is not None and profile.recurrency is not None  # rule 1
        base, length = s.start_schedule, profile.recurrency.length
        return [base + k * length for k in range((lo - base) // length, (hi - base) // length + 1)]
    if profile.kind is Kind.ABSOLUTE and s.start_schedule is not None:
        return [s.start_schedule]
    return [anchor]


def period_at(profile: ChargingProfile, t: datetime, *, anchor: datetime) -> SchedulePeriod | None:
    """The period of `profile` in force at `t` (rules 3-6), or None if it sets nothing then.
    `anchor` is the transaction start, or `t` itself with no transaction (rule 4)."""
    if profile.valid_from is not None and t < profile.valid_from:
        return None
    if profile.valid_to is not None and t >= profile.valid_to:
        return None
    start = _starts(profile, t, t, anchor)[-1]
    span = _span(profile)
    if t < start or (span is not None and t >= start + span):
        return None
    offset_s = (t - start).total_seconds()
    in_force = None
    for period in profile.schedule.periods:
        if period.start_period_s > offset_s:
            break
        in_force = period
    return in_force


def changes_between(profile: ChargingProfile, lo: datetime, hi: datetime, *, anchor: datetime
                    ) -> set[datetime]:
    """The instants strictly between `lo` and `hi` at which `period_at` may change."""
    points = {t for t in (profile.valid_from, profile.valid_to) if t is not None}
    span = _span(profile)
    for start in _starts(profile, lo, hi, anchor):
        points.update(start + timedelta(seconds=p.start_period_s) for p in profile.schedule.periods)
        if span is not None:
            points.add(start + span)
    return {t for t in points if lo < t < hi}
