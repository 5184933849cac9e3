"""Inputs of the allocation engine, validated at construction (outputs: result.py).

Everything the engine needs arrives in one `Snapshot`: the group's settings, every member
charger with its connectors (online or not), the CT reading and `now_s` (monotonic). An
invalid value cannot reach the engine: each dataclass refuses it in `__post_init__` with
an `InvalidInputError` that names the field and the allowed range. The shell (master or
agent-only mode) turns that into "treat this connector as offline" or a config error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where a block is built (package docstring)
    import numpy as np
    import numpy.typing as npt

# IEC 61851-1: below 6 A a pilot cannot offer charging (8 % duty cycle = 6 A).
MIN_CURRENT_A = 6.0
# Manual 6.3: "Charger Current Limit [6-63 A]".
CHARGER_LIMIT_RANGE_A = (6.0, 63.0)
# Sanity bound for a measured current: no io7 connector or grid clamp in a car park
# carries more; anything above is a meter fault, not a reading.
MAX_PLAUSIBLE_CURRENT_A = 2000.0
# Sanity bound for a group limit: far above any LV connection, low enough to catch a
# value typed in W instead of A (100 kW would be refused).
MAX_GROUP_LIMIT_A = 50_000.0
# Priority classes 0 (default) to 9: ten are more than any site has asked for.
MAX_PRIORITY_CLASS = 9


class AllocationError(Exception):
    """Base of the engine's errors."""


class InvalidInputError(AllocationError, ValueError):
    """A snapshot value is out of range or inconsistent: fix the config or drop the reading."""


class InfeasibleGroupError(AllocationError):
    """The group's settings cannot be honoured by its members (e.g. Minimise without room)."""


class Phase(IntEnum):
    """A site phase. The value is the column index used by the engine."""

    L1 = 0
    L2 = 1
    L3 = 2


class Mode(Enum):
    """Manual 6.4.2: share a fixed Total Group Limit, or balance on the CT clamps."""

    STATIC = "static"
    DYNAMIC = "dynamic"


class CtPlacement(Enum):
    """Where the Sense CT kit measures: the grid incomer (includes our own chargers) or
    only the other loads of the building."""

    GRID = "grid"
    OTHER_LOADS = "other_loads"


class OfflineStrategy(Enum):
    """Manual 6.4.2, offline-charger strategy."""

    ZERO = "zero"  # every charger of the group is set to 0 while one is offline
    MINIMISE = "minimise"  # every charger is limited to the minimum current
    MAXIMISE = "maximise"  # offline chargers count as 0; the rest share everything


class CtStatus(Enum):
    OK = "ok"
    STALE = "stale"  # older than ct_stale_after_s: hold, no increases
    LOST = "lost"  # missing or older than ct_timeout_s: static fallback limit
    NOT_USED = "not_used"  # static mode


class Reason(Enum):
    """Why a connector got what it got; the answer to "why is my car slow?"."""

    NO_DEMAND = "no_demand"  # no EV, EV not asking, or not authorised
    CONNECTOR_MAX = "connector_max"  # its hard max (cable, breaker, EV, OCPP profile)
    CHARGER_LIMIT = "charger_limit"  # the charger's Charger Current Limit
    PHASE_LIMIT = "phase_limit"  # the group's limit on `limiting_phase`
    DEMAND_CAP = "demand_cap"  # the EV draws less than offered: capped at draw + headroom
    RAMP = "ramp"  # increase limited this cycle
    CT_STALE = "ct_stale"  # the CT reading is stale: no increases
    TRANSITION = "transition"  # waiting for other connectors' decreases to take effect
    PAUSED_NO_ROOM = "paused_no_room"  # not enough room for 6 A on a phase it loads
    PAUSED_ROTATION = "paused_rotation"  # paused to let a waiting connector have a turn
    PAUSED_MIN_PAUSE = "paused_min_pause"  # paused recently; min pause time not over
    OFFLINE_STRATEGY = "offline_strategy"  # a member is offline (Zero / Minimise)
    OFFLINE = "offline"  # its own charger is offline: it holds its fail-safe current
    FAILSAFE = "failsafe"  # a new master term: fail-safe only until old grants ran out


PAUSED_REASONS = frozenset(
    {Reason.PAUSED_NO_ROOM, Reason.PAUSED_ROTATION, Reason.PAUSED_MIN_PAUSE}
)


_NUMBER_TYPES = frozenset({int, float})  # what _check_finite's isinstance takes, exactly


def _check_finite(name: str, value: float, lo: float, hi: float) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{name}={value!r} must be a finite number in [{lo}, {hi}]")
    if not lo <= value <= hi:
        raise InvalidInputError(f"{name}={value!r} is outside the allowed range [{lo}, {hi}]")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorInput:
    """One connector as the engine sees it this cycle.

    `wiring[k]` is the site phase the connector's line L(k+1) is wired to (phase
    rotation), `None` where the line is not connected. `ev_lines[k]` says whether the EV
    loads line L(k+1); `None` means unknown, so every wired line counts. Measured
    currents are per connector line, like the socket meter reports them.
    """

    connector_id: int
    wiring: tuple[Phase | None, Phase | None, Phase | None]
    max_current_a: float
    wants_power: bool = False
    ev_lines: tuple[bool, bool, bool] | None = None
    measured_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    session_energy_wh: float = 0.0
    priority: int = 0
    # The numbers the engine needs, in site phases, computed once here (see table.py).
    row: tuple[float, ...] = field(init=False, repr=False, compare=False)

    # Bit p set: a line is wired to site phase p (ChargerInput's and Snapshot's check).
    wired_mask: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        try:
            plan = _row_plan(self.wiring, self.ev_lines)
        except TypeError:  # a list where a tuple belongs: valid, but not a cache key
            plan = _row_plan(tuple(self.wiring),
                             None if self.ev_lines is None else tuple(self.ev_lines))
        wired, loads, (k0, k1, k2), loaded, mask = plan
        m = self.measured_a
        meas = (0.0 if k0 < 0 else float(m[k0]), 0.0 if k1 < 0 else float(m[k1]),
                0.0 if k2 < 0 else float(m[k2]))
        # The largest reading on a loaded phase, in phase order (max keeps the first).
        draw = meas[loaded[0]] if len(loaded) == 1 else max([meas[p] for p in loaded])
        row = (float(self.max_current_a), float(self.wants_power), float(self.session_energy_wh),
               float(self.priority), *wired, *loads, *meas, draw)
        object.__setattr__(self, "row", row)
        object.__setattr__(self, "wired_mask", mask)

    def _plausible(self) -> bool:
        """True when `_validate` would find nothing: the same checks as comparisons in
        one expression (a master builds thousands of these a second). NaN and
        infinities fail the comparisons; anything unusual (a list, a numpy scalar, a
        bool) returns False and goes through `_validate`'s own checks, which decide."""
        w, m, el = self.wiring, self.measured_a, self.ev_lines
        if type(w) is not tuple or len(w) != 3 or type(m) is not tuple or len(m) != 3:
            return False
        a, b, c = w
        m0, m1, m2 = m
        mx, e, top, num = self.max_current_a, self.session_energy_wh, \
            MAX_PLAUSIBLE_CURRENT_A, _NUMBER_TYPES
        return (type(a) is Phase and (b is None or (type(b) is Phase and b is not a))
                and (c is None or (type(c) is Phase and c is not a and c is not b))
                and 1 <= self.connector_id <= 255
                and type(mx) in num and type(e) in num
                and type(m0) in num and type(m1) in num and type(m2) in num
                and 0 <= mx <= 80 and 0 <= e <= 1e9
                and 0.0 <= m0 <= top and 0.0 <= m1 <= top and 0.0 <= m2 <= top
                and (el is None or (len(el) == 3 and bool(el[0] or el[1] or el[2]))))

    def _validate(self) -> None:
        try:
            if self._plausible():
                return
        except TypeError:  # not comparable: the checks below name the field
            pass
        if not 1 <= self.connector_id <= 255:
            raise InvalidInputError(f"connector_id={self.connector_id} must be in 1..255")
        if len(self.wiring) != 3:
            raise InvalidInputError("wiring must name a site phase (or None) for L1, L2, L3")
        wired = [p for p in self.wiring if p is not None]
        if not wired:
            raise InvalidInputError(f"connector {self.connector_id}: no line is wired")
        if any(not isinstance(p, Phase) for p in wired):
            raise InvalidInputError(
                f"connector {self.connector_id}: unknown phase in wiring {self.wiring!r}"
            )
        if len(set(wired)) != len(wired):
            raise InvalidInputError(
                f"connector {self.connector_id}: two lines wired to one site phase {self.wiring}"
            )
        if self.wiring[0] is None:
            raise InvalidInputError(
                f"connector {self.connector_id}: L1 must be wired (a single-phase EV loads L1)"
            )
        _check_finite(f"connector {self.connector_id} max_current_a", self.max_current_a, 0, 80)
        if len(self.measured_a) != 3:
            raise InvalidInputError(f"connector {self.connector_id}: measured_a needs 3 values")
        for k, amps in enumerate(self.measured_a):
            _check_finite(
                f"connector {self.connector_id} measured_a[L{k + 1}]",
                amps,
                0.0,
                MAX_PLAUSIBLE_CURRENT_A,
            )
        _check_finite(
            f"connector {self.connector_id} session_energy_wh", self.session_energy_wh, 0, 1e9
        )
        if self.ev_lines is not None and (
            len(self.ev_lines) != 3 or not any(self.ev_lines[k] for k in range(3))
        ):
            raise InvalidInputError(
                f"connector {self.connector_id}: ev_lines must name at least one of 3 lines"
            )

    def loaded_phases(self) -> tuple[Phase, ...]:
        """Site phases this connector's EV loads (all wired ones when unknown)."""
        lines = self.ev_lines or (True, True, True)
        pairs = zip(self.wiring, lines, strict=True)
        loaded = tuple(p for p, used in pairs if used and p is not None)
        # An EV said to load only unwired lines still loads L1 (Type 2 single-phase).
        return loaded or (self.wiring[0],)  # type: ignore[return-value]


_Triple = tuple[float, float, float]


@lru_cache(maxsize=1024)
def _row_plan(wiring: tuple[Phase | None, ...], ev_lines: tuple[bool, ...] | None
              ) -> tuple[_Triple, _Triple, tuple[int, int, int], tuple[int, ...], int]:
    """What a connector's row takes from its (valid) wiring and EV lines, which change
    far less often than its readings: per site phase wired (1.0/0.0), loaded (1.0/0.0)
    and the connector line measured on it (-1: none); the loaded phases in order (never
    none: L1's phase at least); and the wired phases as bits.
    `ConnectorInput.loaded_phases` is the rule; this is its cached result."""
    wired, line_of = [0.0, 0.0, 0.0], [-1, -1, -1]
    mask = 0
    for line, phase in enumerate(wiring):
        if phase is not None:
            wired[phase], line_of[phase] = 1.0, line
            mask |= 1 << phase
    lines = ev_lines or (True, True, True)
    loaded = tuple(p for p, used in zip(wiring, lines, strict=True) if used and p is not None)
    loads = [0.0, 0.0, 0.0]
    for phase in loaded or (wiring[0],):
        loads[phase] = 1.0  # type: ignore[index]
    return ((wired[0], wired[1], wired[2]), (loads[0], loads[1], loads[2]),
            (line_of[0], line_of[1], line_of[2]), tuple(p for p in range(3) if loads[p]), mask)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerInput:
    """One member charger. `online` is the shell's verdict: stream up and data valid."""

    charger_id: str
    current_limit_a: float
    connectors: tuple[ConnectorInput, ...]
    online: bool = True
    # Bit p set: some connector is wired to site phase p (for Snapshot's check).
    wired_mask: int = field(init=False, repr=False, compare=False)
    # Per site phase, what this charger draws when every connector gets 6 A.
    min_draw_a: tuple[float, float, float] = field(init=False, repr=False, compare=False)
    # Its connectors' rows for the engine's table: online, limit, then ConnectorInput.row.
    block: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)
    keys: tuple[tuple[str, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conns, limit, cid = self.connectors, self.current_limit_a, self.charger_id
        lo, hi = CHARGER_LIMIT_RANGE_A
        # The checks of _validate as comparisons (NaN fails them): it runs once per
        # member report, so only an unusual input pays for the messages.
        if not (cid and type(limit) in _NUMBER_TYPES and lo <= limit <= hi
                and type(conns) is tuple and 1 <= len(conns) <= 2
                and (len(conns) == 1 or conns[0].connector_id != conns[1].connector_id)):
            self._validate()
        mask = 0
        n0 = n1 = n2 = 0.0
        for conn in conns:
            cm = conn.wired_mask
            mask |= cm
            if conn.max_current_a >= MIN_CURRENT_A:
                if cm & 1:
                    n0 += MIN_CURRENT_A
                if cm & 2:
                    n1 += MIN_CURRENT_A
                if cm & 4:
                    n2 += MIN_CURRENT_A
        object.__setattr__(self, "wired_mask", mask)
        object.__setattr__(self, "min_draw_a", (min(limit, n0), min(limit, n1), min(limit, n2)))
        head = (float(self.online), float(limit))
        import numpy as np  # noqa: PLC0415 (see the imports)

        block = np.array([head + c.row for c in conns], dtype=np.float64)
        block.setflags(write=False)
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "keys", tuple([(cid, c.connector_id) for c in conns]))

    def _validate(self) -> None:
        if not self.charger_id:
            raise InvalidInputError("charger_id must not be empty")
        lo, hi = CHARGER_LIMIT_RANGE_A
        _check_finite(f"charger {self.charger_id} current_limit_a", self.current_limit_a, lo, hi)
        if not self.connectors:
            raise InvalidInputError(f"charger {self.charger_id} has no connectors")
        if len(self.connectors) > 2:
            raise InvalidInputError(
                f"charger {self.charger_id} has {len(self.connectors)} connectors; "
                "an io7 has 1 or 2"
            )
        ids = [c.connector_id for c in self.connectors]
        if len(set(ids)) != len(ids):
            raise InvalidInputError(f"charger {self.charger_id}: duplicate connector ids {ids}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CtReading:
    """The Sense CT kit's currents per site phase, signed (negative = export), and when
    they were sampled (the shell's monotonic clock). Phases without a clamp are None."""

    currents_a: tuple[float | None, float | None, float | None]
    taken_at_s: float

    def __post_init__(self) -> None:
        if len(self.currents_a) != 3:
            raise InvalidInputError("CT currents_a needs a value (or None) for L1, L2, L3")
        for k, amps in enumerate(self.currents_a):
            if amps is not None:
                _check_finite(
                    f"CT L{k + 1}", amps, -MAX_PLAUSIBLE_CURRENT_A, MAX_PLAUSIBLE_CURRENT_A
                )
        _check_finite("CT taken_at_s", self.taken_at_s, -1e12, 1e12)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConfig:
    """A group's load-balancing settings (manual 6.4.2), plus the control tuning.

    `limit_a` is the per-phase Total Group Limit (static) or Site Limit (dynamic: the
    main fuse). `fallback_limit_a` is what the group may share without a CT reading;
    it defaults to `limit_a` in static mode and is required in dynamic mode, since the
    building's own load is unknown when the CT kit is silent.
    """

    name: str
    phases: tuple[Phase, ...] = (Phase.L1, Phase.L2, Phase.L3)
    mode: Mode = Mode.STATIC
    limit_a: float = 32.0
    fallback_limit_a: float | None = None
    ct_placement: CtPlacement = CtPlacement.GRID
    margin_a: float = 2.0  # dynamic mode: clamp accuracy + one cycle of load change
    offline_strategy: OfflineStrategy = OfflineStrategy.MAXIMISE
    lease_s: float = 3.0  # 3 cycles (architecture: time and rates)
    ct_stale_after_s: float = 2.5  # > 2 missed 1 s cycles
    ct_timeout_s: float = 10.0
    rotation_period_s: float = 5400.0  # io7-sim (README): retuned with issue 12's rules
    min_run_s: float = 300.0
    min_pause_s: float = 120.0
    resume_hysteresis_a: float = 4.0  # io7-sim: room for the noise of a building's load
    ramp_up_a: float = 8.0  # largest increase of one connector per allocation
    settle_s: float = 5.0  # IEC 61851 practice: an EV follows a decrease within ~5 s
    demand_cap_after_s: float = 60.0
    demand_cap_threshold_a: float = 1.0
    demand_cap_headroom_a: float = 3.0
    demand_probe_every_s: float = 600.0
    idle_cap_after_s: float = 15.0  # demand.py: an EV drawing nothing is capped this soon
    # Issue 12 §3 (sharing.py). 0: equal amps above 6 A; 1: equal power (a single-phase
    # car gets 3x the amps of a three-phase one). README, design: chosen with io7-sim.
    share_by_power: float = 0.0
    # Priority classes: (charger id, connector id or 0 for every connector, class 0-9);
    # higher classes are admitted and filled first (admission.py, sharing.py).
    priorities: tuple[tuple[str, int, int], ...] = ()
    # A car of a lower class waiting this long gets its rotation turn (admission.py).
    priority_max_starve_s: float = 3600.0

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInputError("group name must not be empty")
        if not self.phases or len(set(self.phases)) != len(self.phases):
            raise InvalidInputError(f"group phases {self.phases!r} must be distinct and non-empty")
        if any(not isinstance(p, Phase) for p in self.phases):
            raise InvalidInputError(f"group phases {self.phases!r}: unknown phase")
        _check_finite("limit_a", self.limit_a, MIN_CURRENT_A, MAX_GROUP_LIMIT_A)
        if self.mode is Mode.DYNAMIC and self.fallback_limit_a is None:
            raise InvalidInputError(
                "fallback_limit_a is required in dynamic mode: what the group may share "
                "safely when the CT kit is silent"
            )
        if self.fallback_limit_a is not None:
            _check_finite("fallback_limit_a", self.fallback_limit_a, 0.0, self.limit_a)
        _check_finite("margin_a", self.margin_a, 0.0, self.limit_a)
        _check_finite("lease_s", self.lease_s, 0.1, 3600.0)
        _check_finite("ct_stale_after_s", self.ct_stale_after_s, 0.1, 3600.0)
        _check_finite("ct_timeout_s", self.ct_timeout_s, self.ct_stale_after_s, 3600.0)
        for name in ("rotation_period_s", "min_run_s", "min_pause_s", "settle_s"):
            _check_finite(name, getattr(self, name), 0.0, 86400.0)
        _check_finite("resume_hysteresis_a", self.resume_hysteresis_a, 0.0, 32.0)
        _check_finite("ramp_up_a", self.ramp_up_a, 0.1, 80.0)
        _check_finite("demand_cap_after_s", self.demand_cap_after_s, 1.0, 86400.0)
        _check_finite("demand_cap_threshold_a", self.demand_cap_threshold_a, 0.1, 32.0)
        _check_finite("demand_cap_headroom_a", self.demand_cap_headroom_a, 0.5, 32.0)
        _check_finite("demand_probe_every_s", self.demand_probe_every_s, 1.0, 86400.0)
        _check_finite("idle_cap_after_s", self.idle_cap_after_s, 1.0, 86400.0)
        _check_finite("share_by_power", self.share_by_power, 0.0, 1.0)
        _check_finite("priority_max_starve_s", self.priority_max_starve_s, 60.0, 86400.0)
        for entry in self.priorities:
            if (len(entry) != 3 or not isinstance(entry[0], str) or not entry[0]
                    or not 0 <= entry[1] <= 255 or not 0 <= entry[2] <= MAX_PRIORITY_CLASS):
                raise InvalidInputError(
                    f"priorities entry {entry!r} must be (charger id, connector 0-255, "
                    f"class 0-{MAX_PRIORITY_CLASS})")

    def priority_of(self, key: tuple[str, int]) -> int:
        """The configured class of connector `key`: its own entry, else its charger's
        (connector 0), else 0."""
        best = {(c, k): cls for c, k, cls in self.priorities}
        return best.get(key, best.get((key[0], 0), 0))

    @property
    def static_limit_a(self) -> float:
        """What the group may share with no measurement at all."""
        return self.limit_a if self.fallback_limit_a is None else self.fallback_limit_a

    @property
    def failsafe_current_a(self) -> float:
        """What an agent falls back to by itself when its lease runs out."""
        return MIN_CURRENT_A if self.offline_strategy is OfflineStrategy.MINIMISE else 0.0


ConnectorKey = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Need:
    """What a connector's driver is known to need: `energy_wh` in the whole session, and
    leaving in `departure_in_s` from the snapshot's now (OCPP 1.6 carries neither: the
    master learns them per card, master.habits)."""

    charger_id: str
    connector_id: int
    departure_in_s: float
    energy_wh: float

    def __post_init__(self) -> None:
        _check_finite(f"need of {self.charger_id}/{self.connector_id} departure_in_s",
                      self.departure_in_s, -86400.0 * 7, 86400.0 * 7)
        _check_finite(f"need of {self.charger_id}/{self.connector_id} energy_wh",
                      self.energy_wh, 0.0, 1e9)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """Everything one allocation needs. `now_s` is the shell's monotonic clock."""

    now_s: float
    group: GroupConfig
    chargers: tuple[ChargerInput, ...]
    ct: CtReading | None = None
    # Per site phase L1..L3, the lowest external limit in force (back office, energy
    # manager: master.externallimits), A; inf = none on that phase. Rule 0 takes the
    # lower of it and the group's limit.
    external_limit_a: tuple[float, float, float] | None = None
    # Cars whose departure and energy need are known (learned per card: master.habits;
    # sharing.py weighs them); a connector without one behaves as if nothing were known.
    needs: tuple[Need, ...] = ()

    def __post_init__(self) -> None:
        _check_finite("now_s", self.now_s, -1e12, 1e12)
        if self.external_limit_a is not None:
            if len(self.external_limit_a) != 3:
                raise InvalidInputError("external_limit_a needs a value for L1, L2, L3")
            for k, amps in enumerate(self.external_limit_a):
                if not isinstance(amps, int | float) or math.isnan(amps) or amps < 0:
                    raise InvalidInputError(
                        f"external_limit_a[L{k + 1}]={amps!r} must be >= 0 A (inf: none)")
        ids = [c.charger_id for c in self.chargers]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidInputError(f"duplicate charger ids in group {self.group.name}: {dupes}")
        allowed = sum(1 << p for p in self.group.phases)
        for charger in self.chargers:
            if charger.wired_mask & ~allowed:
                stray = sorted(p.name for p in Phase if charger.wired_mask & ~allowed & (1 << p))
                raise InvalidInputError(
                    f"charger {charger.charger_id} is wired to {stray}, outside group "
                    f"{self.group.name}'s phases {[p.name for p in self.group.phases]}"
                )
        if self.group.offline_strategy is OfflineStrategy.MINIMISE:
            check_minimise(self.group, self.chargers)


def check_minimise(group: GroupConfig, chargers: tuple[ChargerInput, ...]) -> None:
    """Minimise puts every connector at 6 A while a member is offline, and an offline
    member holds 6 A by itself: refuse a group where that does not fit the static limit.

    Raises InfeasibleGroupError naming the phase, the need and the limit.
    """
    limit = group.static_limit_a
    for p in group.phases:
        need = sum(c.min_draw_a[p] for c in chargers)
        if need > limit + 1e-9:
            raise InfeasibleGroupError(
                f"group {group.name}: offline strategy Minimise needs {need:.1f} A on {p.name} "
                f"(6 A for each of the members' connectors) but the static limit is "
                f"{limit:.1f} A; raise the limit, remove chargers, or choose Zero or Maximise"
            )
