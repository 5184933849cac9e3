"""Limits on the group from outside the cluster, each with its own validity. Pure.

Sources: the back office (OCPP Local Controller pattern: the ChargePointMaxProfile on
connector 0 of the group's local controller, reported in its AgentState) and a building
energy manager (Modbus TCP, master/emsserver.py), a home energy manager's MQTT setpoint
(master/mqtt.py).
Each source holds at most one limit at a time, in its own slot. Times are wall clock
(Unix s): validities come from OCPP schedules and an EMS's seconds, not from this host's
monotonic clock.

 1. A limit is per site phase, in A, finite and >= 0 (`ExternalLimit` refuses anything
    else). Below 6 A it pauses every connector on that phase: allowed, the engine does it.
 2. The limit per phase at any moment is the lowest of the group's own limit (installed,
    set by io7ctl, or the fallback while the CT kit is lost) and every external limit in
    force there: lowest wins, so no external source can raise the group above its own
    limit, and on expiry the group is back at its own limit, never above it.
 3. A limit is in force until `valid_until_unix_s` (exclusive), or until withdrawn when
    None. `expire` removes the ones past their end. A source that goes silent (the local
    controller offline) keeps its last limit until its end: the safer side. A source that
    reports continually (the local controller, every agent step) is given `grace_s` (one
    lease) past the end it reported, so at a schedule's period boundary its next report
    replaces the value without a moment at the group's own, higher limit.
 4. Every change (set, changed, withdrawn, expired) returns one line for the master's
    security log, naming the source; a repeat of the same limit is no change.
 5. Words for the status (`limit_source`): the binding external source and its end
    ("back office (ChargePointMaxProfile 3) until 18:00"); at a tie the group's own
    limit is named, since it binds for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, tzinfo

from master.allocation.model import MAX_GROUP_LIMIT_A, Phase

MAX_SOURCE_CHARS = 120  # a source's words, as shown in one status line


class ExternalLimitError(ValueError):
    """An external limit that cannot be applied (not a number, negative, absurd); the
    sender is told why and nothing changes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalLimit:
    """One source's limit: A per site phase L1..L3 (inf: not limited on that phase)
    and its end (Unix s, None = until withdrawn). Rule 1."""

    source: str
    limit_a: tuple[float, float, float]
    valid_until_unix_s: float | None = None
    grace_s: float = 0.0  # rule 3: in force this long past its end (shown without it)

    def __post_init__(self) -> None:
        if not self.source or len(self.source) > MAX_SOURCE_CHARS or not all(
                ch.isprintable() for ch in self.source):
            raise ExternalLimitError(f"source {self.source!r} must be 1-{MAX_SOURCE_CHARS} "
                                     "printable characters")
        if len(self.limit_a) != 3:
            raise ExternalLimitError(f"{self.source}: needs a limit for L1, L2 and L3")
        for k, amps in enumerate(self.limit_a):
            number = isinstance(amps, int | float) and not isinstance(amps, bool)
            if not number or not (0.0 <= amps <= MAX_GROUP_LIMIT_A or amps == math.inf):
                raise ExternalLimitError(
                    f"{self.source}: limit on L{k + 1} is {amps!r}; allowed 0 to "
                    f"{MAX_GROUP_LIMIT_A:g} A (a finite number)")
        end = self.valid_until_unix_s
        if end is not None and (isinstance(end, bool) or not math.isfinite(end)):
            raise ExternalLimitError(f"{self.source}: valid until {end!r} is not a time")
        if not 0.0 <= self.grace_s <= 3600.0:
            raise ExternalLimitError(f"{self.source}: grace {self.grace_s!r} s is not 0-3600")

    def in_force(self, now_unix_s: float) -> bool:
        end = self.valid_until_unix_s
        return end is None or now_unix_s < end + self.grace_s

    def describe(self, tz: tzinfo | None = None) -> str:
        """"back office (...) 16.0/16.0/16.0 A until 2025-06-01 18:00:00+02:00"."""
        amps = "/".join("-" if a == math.inf else f"{a:.1f}" for a in self.limit_a)
        end = self.valid_until_unix_s
        until = "until withdrawn" if end is None else \
            f"until {datetime.fromtimestamp(end, tz).isoformat(sep=' ', timespec='seconds')}"
        return f"{self.source}: {amps} A per phase (L1/L2/L3) {until}"


@dataclass(frozen=True, slots=True)
class InForce:
    """The external limits in force at one instant, lowest first (rule 2)."""

    limits: tuple[ExternalLimit, ...] = ()

    @property
    def cap_a(self) -> tuple[float, float, float] | None:
        """Per site phase the lowest external limit (inf where none); None: no limit."""
        if not self.limits:
            return None
        low = [min(lim.limit_a[p] for lim in self.limits) for p in range(3)]
        return (low[0], low[1], low[2])

    def binding(self, phase: Phase) -> ExternalLimit | None:
        """The external limit that is lowest on `phase`, or None."""
        on = [lim for lim in self.limits if lim.limit_a[phase] != math.inf]
        return min(on, key=lambda lim: lim.limit_a[phase]) if on else None


class ExternalLimits:
    """One slot per source (rules 3-4). Not thread-safe: the master's event loop owns it."""

    def __init__(self) -> None:
        self._slots: dict[str, ExternalLimit] = {}

    def put(self, slot: str, limit: ExternalLimit | None, now_unix_s: float) -> str | None:
        """Set `slot` to `limit` (None withdraws it). Returns the security log line of
        the change, or None when nothing changed. A limit already past its end is no
        limit: it withdraws the slot."""
        if limit is not None and not limit.in_force(now_unix_s):
            limit = None
        old = self._slots.get(slot)
        if limit == old:
            return None
        if limit is None:
            assert old is not None
            del self._slots[slot]
            return f"withdrawn: {old.describe()}"
        self._slots[slot] = limit
        return f"{'set' if old is None else 'changed'}: {limit.describe()}"

    def expire(self, now_unix_s: float) -> list[str]:
        """Remove the limits past their end; one security log line each."""
        gone = [slot for slot, lim in self._slots.items() if not lim.in_force(now_unix_s)]
        return [f"expired: {self._slots.pop(slot).describe()}" for slot in gone]

    def get(self, slot: str) -> ExternalLimit | None:
        return self._slots.get(slot)

    def in_force(self, now_unix_s: float) -> InForce:
        """The limits in force at `now_unix_s`, lowest first (by their lowest phase)."""
        live = [lim for lim in self._slots.values() if lim.in_force(now_unix_s)]
        return InForce(tuple(sorted(live, key=lambda lim: (min(lim.limit_a), lim.source))))


def until_words(valid_until_unix_s: float | None, now_unix_s: float, tz: tzinfo | None) -> str:
    """" until 18:00" (today), " until 2025-06-02 07:30" (later), "" (until withdrawn)."""
    if valid_until_unix_s is None:
        return ""
    end = datetime.fromtimestamp(valid_until_unix_s, tz)
    today = datetime.fromtimestamp(now_unix_s, tz).date()
    fmt = "%H:%M:%S" if end.second else "%H:%M"
    return f" until {end.strftime(fmt if end.date() == today else '%Y-%m-%d ' + fmt)}"


def limit_source(phase: Phase, *, configured_a: float, installed_a: float,
                 ct_lost_limit_a: float | None, external: InForce, now_unix_s: float,
                 tz: tzinfo | None = None) -> str:
    """What sets the limit in force on `phase`, in words (rule 5). `ct_lost_limit_a`:
    the fallback limit while the CT kit is lost, else None."""
    own = configured_a if ct_lost_limit_a is None else min(configured_a, ct_lost_limit_a)
    ext = external.binding(phase)
    if ext is not None and ext.limit_a[phase] < own:
        return ext.source + until_words(ext.valid_until_unix_s, now_unix_s, tz)
    if ct_lost_limit_a is not None and ct_lost_limit_a < configured_a:
        return "fallback limit (CT lost)"
    return "set by io7ctl" if configured_a < installed_a else "installed limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitContext:
    """What the status needs to name the limit in force on each phase (rule 5)."""

    installed_limit_a: float
    external: InForce = InForce()
    now_unix_s: float = 0.0
    tz: tzinfo | None = None  # None: this host's local time, as the installer reads it

    def words(self, phase: Phase, *, configured_a: float, ct_lost_limit_a: float | None
              ) -> str:
        return limit_source(phase, configured_a=configured_a,
                            installed_a=self.installed_limit_a,
                            ct_lost_limit_a=ct_lost_limit_a, external=self.external,
                            now_unix_s=self.now_unix_s, tz=self.tz)
