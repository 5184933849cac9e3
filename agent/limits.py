"""The limit applier and lease watchdog: what each connector may offer, pure.

The shell hands every Limits message from the master to `on_limits` and asks `offered(now_s)`
once per cycle; the answer goes to the connector machines (agent.connector) as their
`offered_a`. Time is the caller's monotonic `now_s`; nothing here reads a clock.

Rules, in order (architecture.md: leases, not trust; decrease at once, increase gradually):
 0. Bounds (agent/bounds.py): a Welcome or Limits from an older term, or whose fail-safe
    current or lease is outside this agent's own `LinkBounds`, is refused and changes
    nothing; `refusal` says why until the agent obeys a message again.
 1. Terms: Limits of the same term whose cycle is not newer than the last accepted one are
    ignored. The newest term seen can be seeded (`last_seen_term`, persisted across
    restarts); in this process the first Limits of that term are accepted whatever their
    cycle.
 2. Lease: accepted Limits hold until `now_s + valid_for_s`. Without a valid lease (expired,
    or none yet) every connector falls back to the fail-safe current: the one in the
    newest accepted Limits, else `initial_failsafe_a`. The master derives it from the
    group's offline strategy (manual 6.4.2): 6 A for Minimise, 0 A for Zero and Maximise.
    A connector the master does not mention gets 0 A (paused).
 3. Target per connector = the lowest of: the master's limit (or the fail-safe), the
    Charger Current Limit (manual 6.3), the connector's hard max, and the local limit
    (smart charging, OCPP profiles), rounded down to 0.1 A. The first lowest names the
    `OfferSource`.
 4. Below 6 A is 0 (IEC 61851-1 Table A.7 has no duty cycle for 0 < I < 6 A).
 5. The connectors together never exceed the Charger Current Limit, or the charger cap
    (`set_charger_cap`, OCPP ChargePointMaxProfile) when that is lower (counted as if they
    shared a line: the applier does not know the wiring, so it takes the safe side). If
    the targets do, the limit is shared max-min fairly; if a share would fall below 6 A,
    the highest connector id gets 0 and the rest share again (so with 2 x 6 A > the
    limit, e.g. fail-safe Minimise on a 10 A charger, connector 1 gets 6 A alone).
 6. A decrease applies at once. An increase applies at most once per `increase_interval_s`
    per connector (IEC 61851 practice: an EV needs up to ~5 s to follow the pilot); a
    held increase keeps the previous offer (`INCREASE_HELD`). Going from 0 is an
    increase too, allowed at once if that connector did not increase in the last interval.

Agent-only mode (scenario A) feeds the applier from its in-process allocation with the
same `MasterLimits`, term 0 and an increasing cycle: rule 1 accepts them as long as no
master term was ever seen (`last_seen_term` = 0).

All arithmetic runs in whole tenths of an ampere, so rounding can never add up to more
than a limit.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from agent.bounds import MAX_LEASE_S, LinkBounds, Refusal, check_master_settings
from agent.errors import PeerError
from hw.pilot import MAX_CURRENT_A, MIN_CURRENT_A

CHARGER_LIMIT_RANGE_A = (6.0, 63.0)  # manual 6.3: Charger Current Limit [6-63 A]
DEFAULT_INCREASE_INTERVAL_S = 5.0  # architecture.md, time and rates
_DA_PER_A = 10  # work in 0.1 A steps (architecture: round down to 0.1 A)
_MIN_DA = round(MIN_CURRENT_A * _DA_PER_A)
_STEPS_MEMO = 1024  # values remembered by LimitApplier._steps (0-80 A in 0.1 A: 801)


class OfferSource(enum.Enum):
    """What decided a connector's offer (style.md section 2: constraints return a reason)."""

    MASTER = "master"  # the master's limit, lease valid
    FAILSAFE = "failsafe"  # no valid lease: the fail-safe current
    CHARGER_LIMIT = "charger_limit"  # the Charger Current Limit, or its share of it
    HARD_MAX = "hard_max"  # the connector's hard max (cable, breaker, EV)
    LOCAL = "local"  # a local limit (smart charging, OCPP profile)
    INCREASE_HELD = "increase_held"  # an increase waits for the increase interval
    BELOW_MINIMUM = "below_minimum"  # the target was in (0, 6) A: 0 instead


class InvalidLimitsError(PeerError, ValueError):
    """The master sent Limits that cannot be obeyed (out of range, unknown connector)."""

    def __init__(self, problem: str) -> None:
        super().__init__(peer="master", problem=problem)


def _check_current(what: str, amps: float, *, lo: float = 0.0) -> float:
    if isinstance(amps, bool) or not isinstance(amps, int | float) or not math.isfinite(amps):
        raise ValueError(f"{what} must be a finite number of A, got {amps!r}")
    if not lo <= amps <= MAX_CURRENT_A:
        raise ValueError(f"{what} = {amps} A is outside {lo:g}-{MAX_CURRENT_A:g} A")
    return float(amps)


def _check_failsafe(what: str, amps: float) -> float:
    amps = _check_current(what, amps)
    if 0.0 < amps < MIN_CURRENT_A:
        raise ValueError(f"{what} = {amps} A must be 0 or at least {MIN_CURRENT_A:g} A")
    return amps


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterLimits:
    """One Limits message: per connector id the current it may offer, A (0 = paused)."""

    term: int
    cycle: int
    valid_for_s: float
    failsafe_current_a: float
    currents_a: Mapping[int, float]

    def __post_init__(self) -> None:
        if self._plausible():
            return
        for name in ("term", "cycle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidLimitsError(f"{name} must be a whole number >= 0, got {value!r}")
        v = self.valid_for_s
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < v <= MAX_LEASE_S:
            raise InvalidLimitsError(f"valid_for_s must be in (0, {MAX_LEASE_S:g}] s, got {v!r}")
        try:
            _check_failsafe("failsafe_current_a", self.failsafe_current_a)
            currents: dict[int, float] = {}
            for cid, amps in self.currents_a.items():
                if isinstance(cid, bool) or not isinstance(cid, int) or cid < 1:
                    raise ValueError(f"connector ids start at 1, got {cid!r}")
                currents[cid] = _check_current(f"connector {cid} current", amps)
        except ValueError as exc:
            raise InvalidLimitsError(str(exc)) from exc
        object.__setattr__(self, "currents_a", MappingProxyType(currents))

    def _plausible(self) -> bool:
        """True when the checks of `__post_init__` would pass, as comparisons of exact
        types in one pass (an agent takes one of these a second, a simulated day 10^6):
        then `currents_a` is frozen as it came, as those checks would have kept it. Any
        other value returns False and goes through the checks that word the refusal."""
        t, c, v, f = self.term, self.cycle, self.valid_for_s, self.failsafe_current_a
        if not (type(t) is int and type(c) is int and t >= 0 and c >= 0
                and type(v) in _NUMBER_TYPES and 0.0 < v <= MAX_LEASE_S
                and type(f) in _NUMBER_TYPES
                and (f == 0.0 or MIN_CURRENT_A <= f <= MAX_CURRENT_A)):
            return False
        currents: dict[int, float] = {}
        for cid, amps in self.currents_a.items():
            if not (type(cid) is int and cid >= 1 and type(amps) is float
                    and 0.0 <= amps <= MAX_CURRENT_A):
                return False
            currents[cid] = amps
        object.__setattr__(self, "currents_a", MappingProxyType(currents))
        return True


_NUMBER_TYPES = (int, float)  # exact types only: bool and numpy scalars take the checks


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferDecision:
    """What one connector may offer now and why. `target_a` is the offer without rule 6."""

    current_a: float
    source: OfferSource
    lease_ok: bool
    target_a: float

    def __post_init__(self) -> None:
        for amps in (self.current_a, self.target_a):
            if not (amps == 0.0 or MIN_CURRENT_A <= amps <= MAX_CURRENT_A):
                raise ValueError(f"an offer is 0 or 6-80 A, got {amps}")


def floor_to_step_da(amps: float) -> int:
    """`amps` rounded down to whole 0.1 A steps, as an integer count of steps (>= 0)."""
    steps = math.floor(round(amps * _DA_PER_A, 6))
    if steps / _DA_PER_A > amps:  # the round() above must never round up past `amps`
        steps -= 1
    return max(steps, 0)


def split_fairly(targets_da: Mapping[int, int], capacity_da: int) -> dict[int, int]:
    """Rule 5: share `capacity_da` max-min fairly over the positive targets (0.1 A steps),
    each capped at its target; while any share is below 6 A the highest id gets 0."""
    if sum(targets_da.values()) <= capacity_da and all(
            t >= _MIN_DA or t <= 0 for t in targets_da.values()):
        return {cid: t if t > 0 else 0 for cid, t in targets_da.items()}  # all fit as asked
    out = dict.fromkeys(targets_da, 0)
    active = sorted(cid for cid, t in targets_da.items() if t > 0)
    while active:
        shares = _waterfill({cid: targets_da[cid] for cid in active}, capacity_da)
        if all(s >= _MIN_DA for s in shares.values()):
            out.update(shares)
            break
        active.pop()
    return out


def _waterfill(targets: Mapping[int, int], capacity: int) -> dict[int, int]:
    if sum(targets.values()) <= capacity:
        return dict(targets)
    shares: dict[int, int] = {}
    left = capacity
    waiting = sorted(targets, key=lambda cid: (targets[cid], cid))
    while waiting:
        level = left // len(waiting)
        if targets[waiting[0]] <= level:  # smallest target fits: give it all of it
            cid = waiting.pop(0)
            shares[cid] = targets[cid]
            left -= targets[cid]
            continue
        extra = left - level * len(waiting)  # indivisible steps go to the lowest ids
        for rank, cid in enumerate(sorted(waiting)):
            shares[cid] = level + (1 if rank < extra else 0)
        break
    return shares


class LimitApplier:
    """Turns the master's Limits and local constraints into per-connector offers."""

    def __init__(
        self,
        connector_ids: Iterable[int],
        charger_limit_a: float,
        hard_max_a: Mapping[int, float],
        increase_interval_s: float = DEFAULT_INCREASE_INTERVAL_S,
        initial_failsafe_a: float = 0.0,
        *,
        last_seen_term: int = 0,
        bounds: LinkBounds | None = None,
    ) -> None:
        ids = tuple(connector_ids)
        if not ids or len(set(ids)) != len(ids) or any(c < 1 for c in ids):
            raise ValueError(f"connector ids must be distinct and >= 1, got {ids}")
        lo, hi = CHARGER_LIMIT_RANGE_A
        self._charger_limit_a = _check_current("charger_limit_a", charger_limit_a, lo=lo)
        if self._charger_limit_a > hi:
            raise ValueError(f"charger_limit_a = {charger_limit_a} A is outside {lo:g}-{hi:g} A")
        if set(hard_max_a) != set(ids):
            raise ValueError(f"hard_max_a must give each of {ids}, got {sorted(hard_max_a)}")
        if not (math.isfinite(increase_interval_s) and increase_interval_s >= 0.0):
            raise ValueError(f"increase_interval_s must be >= 0 s, got {increase_interval_s}")
        if last_seen_term < 0:
            raise ValueError(f"last_seen_term must be >= 0, got {last_seen_term}")
        self._ids = tuple(sorted(ids))
        self._hard_max_a = {c: _check_current(f"hard max of {c}", hard_max_a[c]) for c in ids}
        self._local_a: dict[int, float | None] = dict.fromkeys(ids)
        self._charger_cap_a: float | None = None
        self._interval_s = float(increase_interval_s)
        self._bounds = bounds or LinkBounds()
        self._failsafe_a = _check_failsafe("initial_failsafe_a", initial_failsafe_a)
        if self._failsafe_a > min(self._bounds.max_failsafe_a, self._charger_limit_a):
            raise ValueError(f"initial_failsafe_a = {initial_failsafe_a} A is above the "
                             f"bound max_failsafe_a = {self._bounds.max_failsafe_a:g} A or the "
                             f"charger limit {self._charger_limit_a:g} A")
        self._last_seen_term = last_seen_term
        self._refusal: Refusal | None = None
        self._accepted: MasterLimits | None = None
        self._lease_until_s: float | None = None
        self._expiries = 0  # leases that ran out before the next Limits (`lease_expiries`)
        self._offered_da: dict[int, int] = dict.fromkeys(ids, 0)
        self._last_increase_s: dict[int, float | None] = dict.fromkeys(ids)
        self._last_now_s = -math.inf
        self._steps_of: dict[float, int] = {}  # floor_to_step_da's answers (`_steps`)

    # -- inputs --------------------------------------------------------------------------

    def on_welcome(self, *, term: int, failsafe_a: float, lease_s: float) -> bool:
        """Take a Welcome's fail-safe current and term (rule 0) and return True, or refuse
        it (see `refusal`), change nothing and return False."""
        refusal = check_master_settings(
            self._bounds, charger_limit_a=self._charger_limit_a,
            last_seen_term=self._last_seen_term, term=term, failsafe_a=failsafe_a,
            lease_s=lease_s)
        if refusal is not None:
            self._refusal = refusal
            return False
        self._refusal = None
        self._last_seen_term = term
        self._failsafe_a = failsafe_a
        return True

    def on_limits(self, msg: MasterLimits, now_s: float) -> bool:
        """Accept `msg` (rules 0-2) and return True, or return False if it is refused
        (see `refusal`) or stale.

        Raises InvalidLimitsError (a PeerError) for a connector this charger lacks; the
        message is then ignored as a whole.
        """
        _check_time(now_s)
        unknown = sorted(set(msg.currents_a) - set(self._ids))
        if unknown:
            raise InvalidLimitsError(f"limits for connectors {unknown}; this charger has "
                                     f"{list(self._ids)}")
        refusal = check_master_settings(
            self._bounds, charger_limit_a=self._charger_limit_a,
            last_seen_term=self._last_seen_term, term=msg.term,
            failsafe_a=msg.failsafe_current_a, lease_s=msg.valid_for_s)
        if refusal is not None:
            self._refusal = refusal
            return False
        last = self._accepted
        if last is not None and msg.term == last.term and msg.cycle <= last.cycle:
            return False
        self._refusal = None
        self._accepted = msg
        self._last_seen_term = msg.term
        self._failsafe_a = msg.failsafe_current_a
        if self._lease_until_s is not None and now_s >= self._lease_until_s:
            self._expiries += 1  # the lease had run out before this renewal
        self._lease_until_s = now_s + msg.valid_for_s
        return True

    def refuse(self, refusal: Refusal) -> None:
        """Record a message the shell could not even parse (rule 0): reported as
        `refused_reason` until the agent obeys a message again."""
        self._refusal = refusal

    def set_local_limit(self, connector_id: int, amps: float | None) -> None:
        """Cap `connector_id` at `amps` (smart charging, OCPP profile); None lifts it."""
        self._known(connector_id)
        self._local_a[connector_id] = None if amps is None else _check_current(
            f"local limit of {connector_id}", amps)

    def set_charger_cap(self, amps: float | None) -> None:
        """Cap the whole charger at `amps` (OCPP ChargePointMaxProfile, 0-80 A) below its
        Charger Current Limit: rule 5 shares the lower of the two; None lifts it."""
        self._charger_cap_a = None if amps is None else _check_current("charger cap", amps)

    def set_charger_limit(self, amps: float) -> None:
        """Set the Charger Current Limit (manual 6.3, 6-63 A) while running (the web UI):
        a decrease caps the next `offered` at once, an increase is paced by rule 6 like
        any. ValueError outside 6-63 A; nothing changes then."""
        lo, hi = CHARGER_LIMIT_RANGE_A
        if (isinstance(amps, bool) or not isinstance(amps, int | float)
                or not lo <= amps <= hi):  # nan fails the comparison too
            raise ValueError(f"charger_limit_a must be {lo:g}-{hi:g} A, got {amps!r}")
        self._charger_limit_a = float(amps)

    def set_hard_max(self, connector_id: int, amps: float) -> None:
        """Set the connector's hard max (cable, breaker, the EV's own maximum), 0-80 A."""
        self._known(connector_id)
        self._hard_max_a[connector_id] = _check_current(f"hard max of {connector_id}", amps)

    def set_failsafe_current(self, amps: float) -> None:
        """Set the fail-safe current (from the master's Welcome), 0 or 6-80 A."""
        self._failsafe_a = _check_failsafe("failsafe_current_a", amps)

    # -- the decision ---------------------------------------------------------------------

    def offered(self, now_s: float) -> Mapping[int, OfferDecision]:
        """Decide this cycle's offer per connector (rules 2-6) and remember it.

        Calling it again with the same inputs and time returns the same decisions.
        ValueError if `now_s` went backwards.
        """
        _check_time(now_s)
        if now_s < self._last_now_s:
            raise ValueError(f"now_s went backwards: {now_s} < {self._last_now_s}")
        lease = self.lease_ok(now_s)
        targets: dict[int, tuple[int, OfferSource]] = {}
        for cid in self._ids:
            targets[cid] = self._target_da(cid, lease)
        shares = split_fairly({c: t[0] for c, t in targets.items()},
                              self._steps(self.charger_limit_a))
        decisions: dict[int, OfferDecision] = {}
        for cid, (target, source) in targets.items():
            if shares[cid] < target:
                decisions[cid] = self._rate_limited(cid, shares[cid], OfferSource.CHARGER_LIMIT,
                                                    now_s, lease)
            else:
                decisions[cid] = self._rate_limited(cid, target, source, now_s, lease)
        self._last_now_s = now_s
        return MappingProxyType(decisions)

    def _rate_limited(self, cid: int, target: int, source: OfferSource, now_s: float,
                      lease: bool) -> OfferDecision:
        """Rule 6 for one connector: decreases at once, increases once per interval."""
        offer = target
        previous, last_up = self._offered_da[cid], self._last_increase_s[cid]
        if target > previous:
            if last_up is None or now_s - last_up >= self._interval_s:
                self._last_increase_s[cid] = now_s
            else:
                offer, source = previous, OfferSource.INCREASE_HELD
        self._offered_da[cid] = offer
        return OfferDecision(current_a=offer / _DA_PER_A, source=source, lease_ok=lease,
                             target_a=target / _DA_PER_A)

    def _target_da(self, cid: int, lease: bool) -> tuple[int, OfferSource]:
        """Rules 2-4 for one connector, in 0.1 A steps."""
        if lease and self._accepted is not None:
            amps, source = self._accepted.currents_a.get(cid, 0.0), OfferSource.MASTER
        else:
            amps, source = self._failsafe_a, OfferSource.FAILSAFE
        # The lowest; at a tie the first in this order (master or fail-safe, charger
        # limit, hard max, local).
        limit, hard, local = self.charger_limit_a, self._hard_max_a[cid], self._local_a[cid]
        if limit < amps:
            amps, source = limit, OfferSource.CHARGER_LIMIT
        if hard < amps:
            amps, source = hard, OfferSource.HARD_MAX
        if local is not None and local < amps:
            amps, source = local, OfferSource.LOCAL
        steps = self._steps(amps)
        if 0 < steps < _MIN_DA:
            return 0, OfferSource.BELOW_MINIMUM
        return steps, source

    def _steps(self, amps: float) -> int:
        """floor_to_step_da, remembered per value: an agent meets a few dozen values."""
        steps = self._steps_of.get(amps)
        if steps is None:
            if len(self._steps_of) >= _STEPS_MEMO:
                self._steps_of.clear()
            steps = self._steps_of[amps] = floor_to_step_da(amps)
        return steps

    # -- accessors ------------------------------------------------------------------------

    def lease_ok(self, now_s: float) -> bool:
        """True while the newest accepted Limits are still valid at `now_s`."""
        return self._lease_until_s is not None and now_s < self._lease_until_s

    def lease_expiries(self, now_s: float) -> int:
        """How many accepted leases have run out before Limits renewed them, the one
        run out at `now_s` included (a counter for /metrics: it never decreases)."""
        ran_out = self._lease_until_s is not None and now_s >= self._lease_until_s
        return self._expiries + ran_out

    @property
    def term_applied(self) -> int:
        """Term of the Limits obeyed last (0 = none yet; also agent-only mode)."""
        return 0 if self._accepted is None else self._accepted.term

    @property
    def cycle_applied(self) -> int:
        """Cycle of the Limits obeyed last (0 = none yet)."""
        return 0 if self._accepted is None else self._accepted.cycle

    @property
    def last_seen_term(self) -> int:
        """The newest term seen: persist it, and send it in Hello."""
        return self._last_seen_term

    @property
    def failsafe_current_a(self) -> float:
        return self._failsafe_a

    @property
    def refusal(self) -> Refusal | None:
        """Why the last Welcome or Limits was refused; None once the agent obeys again."""
        return self._refusal

    @property
    def refused_reason(self) -> str:
        """`refusal` as one line for AgentState.limits_refused_reason; "" when obeying."""
        return "" if self._refusal is None else self._refusal.reason

    @property
    def charger_limit_a(self) -> float:
        """The Charger Current Limit, or the charger cap when that is lower."""
        cap = self._charger_cap_a
        return self._charger_limit_a if cap is None else min(cap, self._charger_limit_a)

    def _known(self, connector_id: int) -> None:
        if connector_id not in self._hard_max_a:
            raise ValueError(f"unknown connector {connector_id}; this charger has "
                             f"{list(self._ids)}")


def _check_time(now_s: float) -> None:
    if not math.isfinite(now_s):
        raise ValueError(f"now_s must be finite, got {now_s}")
