"""The UK default profile (manual 6.6, the Electric Vehicles (Smart Charge Points)
Regulations 2021): no charging in two local-time periods, and a randomised delay.

`UkDefault` answers, per connector and instant, whether charging must wait
(`postponed`): why, and until when (UTC). The shell asks once per cycle, keeps the
connector's offer at 0 A while the answer is not None and shows the LED solid blue
("charging postponed", manual LED table). It is pure: `now` is passed in, the random
delays come from an injected `random.Random` the shell seeds.

Rules:
 1. Disabled: never postponed. Unplugged: never postponed, and the connector's session
    is forgotten (its drawn delays too).
 2. A no-charging period is a local wall-clock interval [start, end) in the charger's
    time zone on every day; end <= start means it ends the next day. It begins the first
    instant the clock shows start and ends the last instant the clock shows end: at the
    autumn change a repeated time counts twice (the longer no-charging interval, the
    grid's safe side); in the spring gap a missing time is the instant the clock jumps
    past it. Periods that touch or overlap count as one.
 3. Inside a no-charging period a connector that wants to charge is postponed at once
    (one already charging stops now, no delay), until the period's end plus a random
    delay of 0..max_random_delay_s, drawn once per connector and period end.
 4. A session that starts (plug-in and authorisation: the first call with
    `wants_to_start`) outside a period is postponed by a random delay, drawn once per
    session start. Pausing and resuming within a session draws nothing.
 5. Only starts are gated. A reduction (the load balancer's, for safety) never passes
    through here and is never delayed; this module can only hold charging at 0 A.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.errors import AgentError, ConfigError

DEFAULT_TZ = "Europe/London"
# The regulations' peak hours (OPSS guidance on the 2021 Regulations): 08:00-11:00, 16:00-22:00.
DEFAULT_PERIODS = (("08:00", "11:00"), ("16:00", "22:00"))
MAX_PERIODS = 2  # manual 6.6: two no-charging periods
MAX_RANDOM_DELAY_S = 1800  # manual 6.6: maximum randomised delay 0-1800 s
DEFAULT_RANDOM_DELAY_S = 600  # the Regulations' default randomised delay (up to 10 minutes)


class UkDefaultError(AgentError, ValueError):
    """A UK default setting is out of range; `key` names it (as in the config table)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


def _clock(key: str, text: object) -> time:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise UkDefaultError(key, f"must be a time \"HH:MM\" (00:00-23:59), got {text!r}")
    try:
        return time(int(text[:2]), int(text[3:]))
    except ValueError:
        raise UkDefaultError(key, f"must be a time \"HH:MM\" (00:00-23:59), got {text!r}"
                             ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoChargingPeriod:
    """A local wall-clock interval [start, end); end <= start ends the next day (rule 2)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None or value.second \
                    or value.microsecond:
                raise UkDefaultError(name, f"must be a local time of whole minutes, got {value!r}")
        if self.start == self.end:
            raise UkDefaultError("end", f"must differ from start ({self.start:%H:%M})")

    @classmethod
    def parse(cls, start: str, end: str) -> NoChargingPeriod:
        """From "HH:MM" strings, as the config file and web UI give them."""
        return cls(start=_clock("start", start), end=_clock("end", end))


@dataclass(frozen=True, slots=True, kw_only=True)
class UkDefaultSettings:
    """The UK default profile's settings (manual 6.6)."""

    enabled: bool = False
    tz: str = DEFAULT_TZ
    periods: tuple[NoChargingPeriod, ...] = tuple(
        NoChargingPeriod.parse(s, e) for s, e in DEFAULT_PERIODS)
    max_random_delay_s: int = DEFAULT_RANDOM_DELAY_S

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise UkDefaultError("enabled", f"must be true or false, got {self.enabled!r}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise UkDefaultError("tz", f"unknown time zone {self.tz!r} (IANA name, e.g. "
                                       f"{DEFAULT_TZ!r})") from None
        if len(self.periods) > MAX_PERIODS or not all(
                isinstance(p, NoChargingPeriod) for p in self.periods):
            raise UkDefaultError("no_charging_periods",
                                 f"at most {MAX_PERIODS} periods, got {self.periods!r}")
        d = self.max_random_delay_s
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= MAX_RANDOM_DELAY_S:
            raise UkDefaultError("max_random_delay_s", f"must be a whole number of s in "
                                 f"0-{MAX_RANDOM_DELAY_S}, got {d!r}")


def uk_default_from_table(table: Mapping[str, Any], *, file: Path,
                          prefix: str = "smart_charging.uk_default") -> UkDefaultSettings:
    """Settings from a config table (`enabled`, `tz`, `no_charging_periods` as
    [["HH:MM", "HH:MM"], ...], `max_random_delay_s`); absent keys take the defaults.
    Raises ConfigError naming `file` and the dotted key."""
    allowed = ("enabled", "tz", "no_charging_periods", "max_random_delay_s")
    try:
        for key in table:
            if key not in allowed:
                raise UkDefaultError(key, f"unknown key (allowed: {', '.join(allowed)})")
        kw: dict[str, Any] = {k: table[k] for k in ("enabled", "tz", "max_random_delay_s")
                              if k in table}
        raw = table.get("no_charging_periods", DEFAULT_PERIODS)
        if not isinstance(raw, list | tuple):
            raise UkDefaultError("no_charging_periods", f"must be a list, got {raw!r}")
        periods = []
        for i, pair in enumerate(raw):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise UkDefaultError(f"no_charging_periods[{i}]",
                                     f"must be [\"HH:MM\", \"HH:MM\"], got {pair!r}")
            try:
                periods.append(NoChargingPeriod.parse(pair[0], pair[1]))
            except UkDefaultError as exc:
                raise UkDefaultError(f"no_charging_periods[{i}].{exc.key}", exc.problem) from None
        return UkDefaultSettings(periods=tuple(periods), **kw)
    except UkDefaultError as exc:
        raise ConfigError(file=file, key=f"{prefix}.{exc.key}", problem=exc.problem) from None


class Reason(enum.Enum):
    """Why charging is postponed."""

    NO_CHARGING_PERIOD = "no_charging_period"  # rule 3
    RANDOMISED_DELAY = "randomised_delay"  # rules 3-4, after the period or session start


@dataclass(frozen=True, slots=True, kw_only=True)
class Postponement:
    """Charging must wait until `until` (UTC); `delay_s` is the random part of the wait."""

    reason: Reason
    until: datetime
    delay_s: int


@dataclass(slots=True)
class _Session:
    started: bool = False
    until: datetime | None = None
    delay_s: int = 0
    period_end: datetime | None = None  # the period end whose delay is drawn (rule 3)


def _wall_to_utc(day: date, wall: time, tz: ZoneInfo, *, last: bool) -> datetime:
    """Rule 2: the first (or, `last`, the last) instant the local clock shows `wall` on
    `day`; in a spring-forward gap, the instant the clock jumps past it."""
    naive = datetime.combine(day, wall)
    found = sorted({naive.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)})
    real = [t for t in found if t.astimezone(tz).replace(tzinfo=None) == naive]
    if real:
        return real[-1] if last else real[0]
    lo_s, hi_s = 0, int((found[-1] - found[0]).total_seconds())  # the clock is before, after
    while hi_s - lo_s > 1:
        mid_s = (lo_s + hi_s) // 2
        shown = (found[0] + timedelta(seconds=mid_s)).astimezone(tz).replace(tzinfo=None)
        lo_s, hi_s = (mid_s, hi_s) if shown < naive else (lo_s, mid_s)
    return found[0] + timedelta(seconds=hi_s)


class UkDefault:
    """Decides, per connector, whether charging is postponed (module rules 1-5)."""

    def __init__(self, settings: UkDefaultSettings, rng: random.Random) -> None:
        self._settings = settings
        self._tz = ZoneInfo(settings.tz)
        self._rng = rng
        self._sessions: dict[int, _Session] = {}

    @property
    def settings(self) -> UkDefaultSettings:
        return self._settings

    def postponed(self, connector_id: int, now: datetime, *, plugged_in: bool,
                  wants_to_start: bool) -> Postponement | None:
        """Whether connector `connector_id` must hold charging at `now` (aware, any zone).
        `wants_to_start`: the session is authorised (or needs no authorisation) and would
        charge if allowed; True also while it charges. None = charging may go on."""
        if now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        now = now.astimezone(UTC)
        if not self._settings.enabled or not plugged_in:
            self._sessions.pop(connector_id, None)
            return None
        s = self._sessions.setdefault(connector_id, _Session())
        if not wants_to_start:
            return None
        period_end = self.period_end(now)
        if not s.started:  # rule 4: the session starts now
            s.started = True
            if period_end is None:
                s.delay_s = self._draw()
                s.until = now + timedelta(seconds=s.delay_s)
        if period_end is not None:  # rule 3
            if s.period_end != period_end:
                s.period_end, s.delay_s = period_end, self._draw()
                s.until = period_end + timedelta(seconds=s.delay_s)
            assert s.until is not None
            return Postponement(reason=Reason.NO_CHARGING_PERIOD, until=s.until, delay_s=s.delay_s)
        if s.until is not None and now < s.until:
            return Postponement(reason=Reason.RANDOMISED_DELAY, until=s.until, delay_s=s.delay_s)
        return None

    def period_end(self, now: datetime) -> datetime | None:
        """If `now` is inside a no-charging period (rule 2), when it ends (UTC), else None."""
        today = now.astimezone(self._tz).date()
        spans = []
        for offset in (-1, 0, 1, 2):  # a period may start the day before; merged ones chain
            day = today + timedelta(days=offset)
            for p in self._settings.periods:
                end_day = day if p.end > p.start else day + timedelta(days=1)
                spans.append((_wall_to_utc(day, p.start, self._tz, last=False),
                              _wall_to_utc(end_day, p.end, self._tz, last=True)))
        ends = [end for start, end in spans if start <= now < end]
        if not ends:
            return None
        end, extended = max(ends), True
        while extended:  # periods that touch or overlap count as one
            later = [e for s, e in spans if s <= end < e]
            extended = bool(later)
            end = max([end, *later])
        return end

    def _draw(self) -> int:
        return self._rng.randint(0, self._settings.max_random_delay_s)


__all__ = ["DEFAULT_PERIODS", "DEFAULT_RANDOM_DELAY_S", "MAX_RANDOM_DELAY_S",
           "NoChargingPeriod", "Postponement", "Reason", "UkDefault", "UkDefaultError",
           "UkDefaultSettings", "uk_default_from_table"]
