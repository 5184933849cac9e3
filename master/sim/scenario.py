"""A day of a car park as data: the site, its groups and chargers, the EVs that arrive.

A scenario is a TOML file (`deploy/scenarios/*.toml`) or the output of `random_day`.
Times are wall-clock times of the simulated day ("07:30", or seconds since midnight);
every value is checked when the file is read, and an error names the file, the key and
what is allowed, like the master's and agent's configs.

1. The site: the main fuse per phase, the building's load profile (hw.sim.site), solar.
2. Groups: scenario A (`agent_only`, one charger with its own CT clamps), B (one group on
   all phases) or C (one group per phase, each with its own master and CT kit). Each
   group has the engine's settings (mode, limit, CT placement, offline strategy, margin,
   rotation period) and is read by its own CT kit on its phases.
3. Chargers: id, group, wiring of its connectors (connector line -> site phase), Charger
   Current Limit, connector hard max.
4. Arrivals: when, where, which EV (phases, onboard max, battery, SoC on arrival, energy
   wanted into the battery, response delay) and when it leaves.
5. Events: a charger offline (its agent cannot reach the master) or the CT kit silent from
   t1 to t2, and extra building load from t1 (to t2).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw.sim.ev import EvSpec
from hw.sim.site import SiteProfile, SiteSpec
from master.allocation import (
    ChargerInput,
    ConnectorInput,
    CtPlacement,
    GroupConfig,
    InfeasibleGroupError,
    Mode,
    OfflineStrategy,
    Phase,
    check_minimise,
)

SECONDS_PER_DAY = 86_400.0
PHASE_NAMES = {"L1": Phase.L1, "L2": Phase.L2, "L3": Phase.L3}
EVENT_KINDS = ("charger_offline", "ct_silent", "load_step")
SWAP_S = 1.0  # the least time between one car leaving a socket and the next arriving


class ScenarioError(Exception):
    """The scenario cannot be run as written: fix the file (the message says where)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerSpec:
    charger_id: str
    group: str
    current_limit_a: float
    wiring: tuple[Phase | None, Phase | None, Phase | None]
    connector_max_a: float = 32.0
    connectors: int = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    at_s: float
    charger_id: str
    connector_id: int
    ev: EvSpec
    soc: float
    leave_s: float

    @property
    def wanted_wh(self) -> float:
        """Energy the EV wants from the grid (its battery's need over the efficiency)."""
        need = max(0.0, self.ev.target_soc - self.soc) * self.ev.battery_wh
        return need / self.ev.charge_efficiency


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: str
    from_s: float
    to_s: float
    charger_id: str = ""
    group: str = ""
    amps: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def active(self, now_s: float) -> bool:
        return self.from_s <= now_s < self.to_s


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSpec:
    config: GroupConfig
    agent_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    fuse_a: tuple[float, float, float]
    site: SiteSpec
    start_s: float
    end_s: float
    groups: tuple[GroupSpec, ...]
    chargers: tuple[ChargerSpec, ...]
    arrivals: tuple[Arrival, ...]
    events: tuple[Event, ...] = ()
    description: str = ""
    source: str = field(default="<built>", compare=False)
    # a session log (master.sim.sessionlog) to replay here instead of `arrivals`, as the
    # file writes it: relative to the scenario file's folder
    sessions_csv: str = ""

    def group_of(self, charger_id: str) -> GroupSpec:
        charger = next(c for c in self.chargers if c.charger_id == charger_id)
        return next(g for g in self.groups if g.config.name == charger.group)

    def extra_load_a(self, now_s: float) -> tuple[float, float, float]:
        """Building load the `load_step` events add at `now_s`, per site phase."""
        extra = [0.0, 0.0, 0.0]
        for e in self.events:
            if e.kind == "load_step" and e.active(now_s):
                for p in range(3):
                    extra[p] += e.amps[p]
        return (extra[0], extra[1], extra[2])


# -- reading a TOML file -------------------------------------------------------------------

class _Table:
    """One TOML table: typed getters whose errors name the file and the key."""

    def __init__(self, file: str, where: str, raw: Mapping[str, Any]) -> None:
        self.file, self.where, self.raw = file, where, raw

    def _err(self, key: str, why: str) -> ScenarioError:
        return ScenarioError(f"{self.file}: {self.where}.{key}: {why}")

    def has(self, key: str) -> bool:
        return key in self.raw

    def only(self, *allowed: str) -> None:
        """Refuse keys this table does not know (a typo must not be silently ignored)."""
        unknown = sorted(set(self.raw) - set(allowed))
        if unknown:
            raise self._err(unknown[0], f"unknown key; this table takes {', '.join(allowed)}")

    def number(self, key: str, default: float | None, lo: float, hi: float) -> float:
        value = self.raw.get(key, default)
        if value is None:
            raise self._err(key, f"missing; a number within {lo:g}..{hi:g}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or not lo <= value <= hi:
            raise self._err(key, f"{value!r} is not a number within {lo:g}..{hi:g}")
        return float(value)

    def integer(self, key: str, default: int | None, lo: int, hi: int) -> int:
        value = self.number(key, default, lo, hi)
        if value != int(value):
            raise self._err(key, f"{value!r} is not a whole number")
        return int(value)

    def string(self, key: str, default: str | None = None,
               choices: tuple[str, ...] | None = None) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str) or not value:
            raise self._err(key, f"{value!r}: expected a non-empty string")
        if choices is not None and value not in choices:
            raise self._err(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self._err(key, f"{value!r}: expected true or false")
        return value

    def time(self, key: str, default: float | None = None) -> float:
        """A time "HH:MM[:SS]" from the first midnight (up to 48:00: an overnight stay
        ends at e.g. "31:30", 07:30 next morning) or seconds since that midnight."""
        value = self.raw.get(key, default)
        if isinstance(value, str):
            parts = value.split(":")
            try:
                nums = [int(p) for p in parts]
            except ValueError:
                nums = []
            if len(nums) in (2, 3) and 0 <= nums[0] <= 48 and all(0 <= n < 60 for n in nums[1:]):
                secs = nums[0] * 3600 + nums[1] * 60 + (nums[2] if len(nums) == 3 else 0)
                if secs <= 2 * SECONDS_PER_DAY:
                    return float(secs)
            raise self._err(key, f"{value!r} is not a time HH:MM[:SS] (00:00-48:00; past "
                                 f"24:00 is the next morning)")
        return self.number(key, default, 0.0, 2 * SECONDS_PER_DAY)

    def per_phase(self, key: str, default: float | tuple[float, float, float] | None,
                  lo: float, hi: float) -> tuple[float, float, float]:
        value = self.raw.get(key, default)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, list):
            if len(value) != 3:
                raise self._err(key, f"{value!r}: give one value or three (L1, L2, L3)")
            t = _Table(self.file, f"{self.where}.{key}", {str(i): v for i, v in enumerate(value)})
            return (t.number("0", None, lo, hi), t.number("1", None, lo, hi),
                    t.number("2", None, lo, hi))
        one = self.number(key, None if isinstance(default, tuple) else default, lo, hi)
        return (one, one, one)

    def phases(self, key: str, default: list[str] | None = None) -> tuple[Phase | None, ...]:
        value = self.raw.get(key, default)
        if not isinstance(value, list) or not 1 <= len(value) <= 3:
            raise self._err(key, f"{value!r}: expected a list of 1-3 of L1, L2, L3 or \"-\"")
        out: list[Phase | None] = []
        for v in value:
            if v == "-":
                out.append(None)
            elif v in PHASE_NAMES:
                out.append(PHASE_NAMES[v])
            else:
                raise self._err(key, f"{v!r} is not L1, L2, L3 or \"-\"")
        return tuple(out)

    def tables(self, key: str) -> list[_Table]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._err(key, "expected an array of tables ([[...]])")
        return [_Table(self.file, f"{key}[{i}]", v) for i, v in enumerate(value)]

    def table(self, key: str) -> _Table:
        value = self.raw.get(key, {})
        if not isinstance(value, dict):
            raise self._err(key, "expected a table")
        return _Table(self.file, key, value)


def _enum(t: _Table, key: str, default: str, enum: Mapping[str, Any]) -> Any:
    return enum[t.string(key, default, tuple(enum))]


_MODES = {"static": Mode.STATIC, "dynamic": Mode.DYNAMIC}
_PLACEMENTS = {"grid": CtPlacement.GRID, "other_loads": CtPlacement.OTHER_LOADS}
_STRATEGIES = {"maximise": OfflineStrategy.MAXIMISE, "minimise": OfflineStrategy.MINIMISE,
               "zero": OfflineStrategy.ZERO}
_PROFILES = {p.value: p for p in SiteProfile}


def _group(t: _Table) -> GroupSpec:
    t.only("name", "phases", "mode", "limit_a", "fallback_limit_a", "ct_placement",
           "offline_strategy", "agent_only", "margin_a", "rotation_period_s", "ramp_up_a",
           "demand_cap_headroom_a", "settle_s", "min_run_s", "min_pause_s")
    phases = tuple(p for p in t.phases("phases", ["L1", "L2", "L3"]) if p is not None)
    mode = _enum(t, "mode", "dynamic", _MODES)
    kwargs: dict[str, Any] = {}
    for key, lo, hi in (("margin_a", 0.0, 20.0), ("rotation_period_s", 60.0, 86_400.0),
                        ("ramp_up_a", 0.1, 80.0), ("demand_cap_headroom_a", 0.0, 80.0),
                        ("settle_s", 0.0, 30.0), ("min_run_s", 0.0, 86_400.0),
                        ("min_pause_s", 0.0, 86_400.0)):
        if t.has(key):
            kwargs[key] = t.number(key, None, lo, hi)
    fallback = t.number("fallback_limit_a", None, 0.0, 2000.0) if t.has("fallback_limit_a") \
        else None
    try:
        config = GroupConfig(
            name=t.string("name"), phases=phases, mode=mode,
            limit_a=t.number("limit_a", None, 6.0, 2000.0), fallback_limit_a=fallback,
            ct_placement=_enum(t, "ct_placement", "grid", _PLACEMENTS),
            offline_strategy=_enum(t, "offline_strategy", "maximise", _STRATEGIES), **kwargs)
    except ValueError as exc:
        raise ScenarioError(f"{t.file}: {t.where}: {exc}") from exc
    return GroupSpec(config=config, agent_only=t.boolean("agent_only", False))


def _arrival(t: _Table) -> Arrival:
    t.only("at", "charger", "connector", "phases", "max_current_a", "battery_kwh", "soc",
           "target_soc", "departure", "response_delay_s")
    phases = t.integer("phases", 3, 1, 3)
    battery_wh = t.number("battery_kwh", 60.0, 1.0, 300.0) * 1000.0
    soc = t.number("soc", 0.3, 0.0, 1.0)
    try:
        ev = EvSpec(phases=phases, onboard_max_a=t.number("max_current_a", 16.0, 6.0, 80.0),
                    battery_wh=battery_wh,
                    response_delay_s=t.number("response_delay_s", 2.0, 0.0, 15.0),
                    target_soc=t.number("target_soc", 0.8, 0.01, 1.0))
    except ValueError as exc:
        raise ScenarioError(f"{t.file}: {t.where}: {exc}") from exc
    at_s, leave_s = t.time("at"), t.time("departure")
    if leave_s <= at_s:
        raise ScenarioError(f"{t.file}: {t.where}.departure: must be after `at`")
    return Arrival(at_s=at_s, charger_id=t.string("charger"),
                   connector_id=t.integer("connector", None, 1, 2), ev=ev, soc=soc,
                   leave_s=leave_s)


def _event(t: _Table) -> Event:
    t.only("kind", "from", "to", "charger", "group", "amps")
    kind = t.string("kind", None, EVENT_KINDS)
    from_s = t.time("from")
    to_s = t.time("to", 2 * SECONDS_PER_DAY)
    if to_s <= from_s:
        raise ScenarioError(f"{t.file}: {t.where}.to: must be after `from`")
    return Event(kind=kind, from_s=from_s, to_s=to_s,
                 charger_id=t.string("charger") if kind == "charger_offline" else "",
                 group=t.string("group", "*") if kind == "ct_silent" else "",
                 amps=t.per_phase("amps", None, -200.0, 200.0) if kind == "load_step"
                 else (0.0, 0.0, 0.0))


def parse_scenario(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """Build and check a scenario from its TOML data; ScenarioError names what is wrong."""
    root = _Table(source, "scenario", raw)
    root.only("name", "description", "site", "groups", "chargers", "arrivals", "events",
              "sessions_csv")
    sessions_csv = root.string("sessions_csv") if root.has("sessions_csv") else ""
    if sessions_csv and root.has("arrivals"):
        raise ScenarioError(f"{source}: scenario.sessions_csv: give arrivals or a session "
                            f"log, not both")
    site_t = root.table("site")
    site_t.only("fuse_a", "profile", "peak_a", "base_a", "step_a", "step_at", "phase_factors",
                "solar_peak_a", "noise_a", "seed", "start", "end")
    fuse = site_t.per_phase("fuse_a", None, 6.0, 2000.0)
    try:
        site = SiteSpec(
            profile=_enum(site_t, "profile", "office", _PROFILES),
            peak_a=site_t.number("peak_a", 30.0, 0.0, 2000.0),
            base_a=site_t.number("base_a", SiteSpec().base_a, 0.0, 2000.0),
            step_a=site_t.number("step_a", SiteSpec().step_a, 0.0, 2000.0),
            step_at_s=site_t.time("step_at", 12 * 3600.0),
            phase_factors=site_t.per_phase("phase_factors", SiteSpec().phase_factors, 0.0, 2.0),
            solar_peak_a=site_t.number("solar_peak_a", 0.0, 0.0, 2000.0),
            noise_a=site_t.number("noise_a", 0.0, 0.0, 100.0),
            seed=site_t.integer("seed", 0, 0, 2**31))
    except ValueError as exc:
        raise ScenarioError(f"{source}: site: {exc}") from exc
    start_s, end_s = site_t.time("start", 0.0), site_t.time("end", SECONDS_PER_DAY)
    if end_s - start_s > SECONDS_PER_DAY:
        raise ScenarioError(f"{source}: site.end: a scenario covers at most 24 h")
    if end_s <= start_s:
        raise ScenarioError(f"{source}: site.end: must be after site.start")
    groups = tuple(_group(t) for t in root.tables("groups"))
    chargers = []
    for t in root.tables("chargers"):
        t.only("id", "group", "current_limit_a", "wiring", "connector_max_a", "connectors")
        wiring = [*t.phases("wiring", ["L1", "L2", "L3"]), None, None][:3]
        chargers.append(ChargerSpec(
            charger_id=t.string("id"), group=t.string("group"),
            current_limit_a=t.number("current_limit_a", 32.0, 6.0, 63.0),
            wiring=(wiring[0], wiring[1], wiring[2]),
            connector_max_a=t.number("connector_max_a", 32.0, 6.0, 80.0),
            connectors=t.integer("connectors", 2, 1, 2)))
    scenario = Scenario(
        name=root.string("name", Path(source).stem or "scenario"),
        description=str(raw.get("description", "")), fuse_a=fuse, site=site,
        start_s=start_s, end_s=end_s, groups=groups, chargers=tuple(chargers),
        arrivals=tuple(sorted((_arrival(t) for t in root.tables("arrivals")),
                              key=lambda a: a.at_s)),
        events=tuple(_event(t) for t in root.tables("events")), source=source,
        sessions_csv=sessions_csv)
    check(scenario)
    return scenario


def check(s: Scenario) -> None:
    """Cross-checks a table-by-table read cannot do: references and overlaps."""
    names = [g.config.name for g in s.groups]
    if not names or len(set(names)) != len(names):
        raise ScenarioError(f"{s.source}: groups: give each group once, by a unique name")
    ids = [c.charger_id for c in s.chargers]
    if not ids or len(set(ids)) != len(ids):
        raise ScenarioError(f"{s.source}: chargers: give each charger once, by a unique id")
    by_id = {c.charger_id: c for c in s.chargers}
    for c in s.chargers:
        if c.group not in names:
            raise ScenarioError(f"{s.source}: charger {c.charger_id}: group {c.group!r} "
                                f"is not one of {names}")
    for g in s.groups:
        members = [c for c in s.chargers if c.group == g.config.name]
        try:
            if g.config.offline_strategy is OfflineStrategy.MINIMISE:
                check_minimise(g.config, tuple(_charger_input(c) for c in members))
        except InfeasibleGroupError as exc:
            raise ScenarioError(f"{s.source}: {exc}") from exc
        if g.agent_only and len(members) != 1:
            raise ScenarioError(f"{s.source}: group {g.config.name}: agent_only (scenario A) "
                                f"balances one charger, not {len(members)}")
    busy: dict[tuple[str, int], float] = {}
    for a in s.arrivals:
        spec = by_id.get(a.charger_id)
        if spec is None or a.connector_id > spec.connectors:
            raise ScenarioError(f"{s.source}: arrival at {a.at_s:g} s: no connector "
                                f"{a.charger_id}/{a.connector_id}")
        key = (a.charger_id, a.connector_id)
        # the socket is empty for at least one step (1 s) between two cars: the run
        # plugs arrivals in before it unplugs departures of the same second
        if busy.get(key, -math.inf) + SWAP_S > a.at_s:
            raise ScenarioError(f"{s.source}: arrival at {a.at_s:g} s on {key}: the previous "
                                f"EV is still there (until {busy[key]:g} s; the next may "
                                f"arrive {SWAP_S:g} s after)")
        busy[key] = a.leave_s
    for e in s.events:
        if e.kind == "charger_offline" and e.charger_id not in by_id:
            raise ScenarioError(f"{s.source}: event {e.kind}: no charger {e.charger_id!r}")
        if e.kind == "ct_silent" and e.group not in ("*", *names):
            raise ScenarioError(f"{s.source}: event ct_silent: no group {e.group!r}")


def _charger_input(c: ChargerSpec) -> ChargerInput:
    return ChargerInput(charger_id=c.charger_id, current_limit_a=c.current_limit_a,
                        connectors=tuple(ConnectorInput(connector_id=k, wiring=c.wiring,
                                                        max_current_a=c.connector_max_a)
                                         for k in range(1, c.connectors + 1)))


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file. ScenarioError names the file and the key on any problem."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    return parse_scenario(raw, str(path))
