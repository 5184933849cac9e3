"""A session log replayed on a site, and the site owner's what-ifs (pure but `prepare`).

`io7-sim run site.toml --sessions log.csv [--fuse-a 80] [--add-sockets 6]`. Rules:
1. A row that names its station (a charger id of the site) charges there, on its
   connector or else the first one free for its whole stay; if that socket is taken, the
   file contradicts itself (or the site has fewer sockets than the export): an error
   names both rows. A car plugs in CHANGEOVER_S after the one before it left at the
   earliest (exports round to the minute: the next car "arrives" as the last one leaves).
2. A row without a station (or every row, with `ignore_stations`) takes, in arrival
   order, the first socket in site order that is free for the rest of its stay. When
   none is, the car waits, as a driver parked nearby would, and plugs in at the first
   moment one is free (CHANGEOVER_S after the last car left) until its departure; a car
   whose departure comes first is turned away (listed by row). So adding sockets shows
   up as less waiting and fewer cars turned away.
3. The car is built so that it wants exactly energy_kwh from the grid: a battery that
   the energy takes from 20 % to its driver's limit of 80 %, where the taper would start,
   so that it draws its maximum until it has its energy (hw.sim.ev rule 3).
4. A stay is cut at the site's end (`[site] end`, 24:00 by default); a row arriving
   outside the site's start..end is an error naming it.
5. `--fuse-a A`: the main fuse becomes A on every phase; a group limit that was the fuse
   follows it, another is capped at it (and its fallback with it).
   `--add-sockets N`: N sockets more, as io7 Doubles copying the site's last charger
   (group, limits), their wiring rotated L1 -> L2 -> L3 charger by charger (manual 5.3)
   in a three-phase group; the last one has one socket if N is odd.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from hw.sim.ev import EvSpec
from master.allocation import Phase
from master.sim.scenario import (
    Arrival,
    ChargerSpec,
    Scenario,
    ScenarioError,
    check,
)
from master.sim.sessionlog import SessionLog, SessionLogError, SessionRow, read_sessions

ARRIVAL_SOC = 0.2  # rule 3
TARGET_SOC = 0.8  # = EvSpec.taper_start_soc: no taper before the car has its energy
RESPONSE_DELAY_S = 2.0  # EvSpec's default; exports do not say how fast a car follows
EFFICIENCY = EvSpec().charge_efficiency
MAX_ADDED_SOCKETS = 200
CHANGEOVER_S = 60.0  # one car drives out, the next parks and plugs in (an estimate)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placed:
    """A row on its socket: plugged in `waited_s` after it arrived."""

    row: int
    arrival: Arrival
    waited_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    scenario: Scenario
    log: SessionLog
    placed: tuple[Placed, ...]
    turned_away: tuple[int, ...]  # rows whose car found no socket before it left
    cut_at_end: tuple[int, ...]  # rows whose stay the site's end cut short

    def summary(self) -> dict[str, object]:
        """What `io7-sim run` prints about the replay (and --json carries)."""
        waits = sorted(p.waited_s for p in self.placed if p.waited_s > 0.0)
        return {
            "file": self.log.source, "day": str(self.log.day or ""),
            "rows": len(self.log.rows) + self.log.other_days,
            "other_days": self.log.other_days, "replayed": len(self.placed),
            "waited": len(waits),
            "median_wait_min": round(waits[len(waits) // 2] / 60.0, 1) if waits else 0.0,
            "turned_away_rows": list(self.turned_away),
            "cut_at_end_rows": list(self.cut_at_end),
            "ignored_columns": list(self.log.ignored_columns)}


def _ev(row: SessionRow) -> tuple[EvSpec, float]:
    """Rule 3: an EV that wants exactly the row's energy, and its SoC on arrival."""
    if row.energy_wh <= 0.0:  # plugged in full: it never asks
        return EvSpec(phases=row.phases, onboard_max_a=row.max_current_a,
                      response_delay_s=RESPONSE_DELAY_S, target_soc=TARGET_SOC), TARGET_SOC
    battery_wh = row.energy_wh * EFFICIENCY / (TARGET_SOC - ARRIVAL_SOC)
    return EvSpec(phases=row.phases, onboard_max_a=row.max_current_a, battery_wh=battery_wh,
                  response_delay_s=RESPONSE_DELAY_S, target_soc=TARGET_SOC), ARRIVAL_SOC


def _free_from(bookings: list[tuple[float, float, int]], at_s: float, leave_s: float) -> float:
    """The first moment >= at_s from which a socket is free until leave_s and the
    changeover after it (inf: not before leave_s)."""
    t, until = at_s, leave_s + CHANGEOVER_S
    for start, end, _ in sorted(bookings):
        if end <= t:
            continue
        if start >= until:
            break
        t = end
    return t if t < leave_s else math.inf


def replay(site: Scenario, log: SessionLog, *, ignore_stations: bool = False) -> Replay:
    """The site with the log's sessions as its arrivals (rules 1-4). SessionLogError
    names the row and column of a row that cannot be placed."""
    sockets = [(c.charger_id, k) for c in site.chargers for k in range(1, c.connectors + 1)]
    booked: dict[tuple[str, int], list[tuple[float, float, int]]] = {s: [] for s in sockets}
    by_id = {c.charger_id: c for c in site.chargers}
    start_s, end_s = site.start_s, site.end_s
    for r in log.rows:
        if not start_s <= r.arrival_s < end_s:
            raise SessionLogError(f"{log.where(r.row, 'arrival')}: outside the site's day "
                                  f"{_hhmm(start_s)}-{_hhmm(end_s)} ([site] start/end)")
    fixed = [] if ignore_stations else [r for r in log.rows if r.station is not None]
    free = [r for r in log.rows if ignore_stations or r.station is None]
    plugged: dict[int, tuple[tuple[str, int], float]] = {}  # row -> socket, plug-in time
    for r in sorted(fixed, key=lambda r: (r.arrival_s, r.row)):  # rule 1
        assert r.station is not None
        spec = by_id.get(r.station)
        if spec is None:
            names = ", ".join(list(by_id)[:6]) + (", ..." if len(by_id) > 6 else "")
            raise SessionLogError(f"{log.where(r.row, 'station')}: {r.station!r} is not a "
                                  f"charger of {site.source} ({names}); leave it empty to "
                                  f"take a free socket, or use --ignore-stations")
        if r.connector is not None and r.connector > spec.connectors:
            raise SessionLogError(f"{log.where(r.row, 'connector')}: {r.station} has "
                                  f"{spec.connectors} connector(s)")
        ks = [r.connector] if r.connector is not None else range(1, spec.connectors + 1)
        leave = min(r.departure_s, end_s)
        for k in ks:
            t = _free_from(booked[(r.station, k)], r.arrival_s, leave)
            if t <= r.arrival_s + CHANGEOVER_S:
                booked[(r.station, k)].append((t, leave + CHANGEOVER_S, r.row))
                plugged[r.row] = ((r.station, k), t)
                break
        else:
            taken = sorted({b[2] for k in ks for b in booked[(r.station, k)]
                            if b[0] < leave and b[1] - CHANGEOVER_S > r.arrival_s})
            what = f"{r.station}/{ks[0]} is" if len(ks) == 1 else f"every socket of {r.station} is"
            raise SessionLogError(f"{log.where(r.row, 'station')}: {what} taken at "
                                  f"{_hhmm(r.arrival_s)} by row(s) "
                                  f"{', '.join(map(str, taken))}; fix the times, or leave "
                                  f"the station empty to take a free socket")
    turned_away, waited = [], {}
    for r in sorted(free, key=lambda r: (r.arrival_s, r.row)):  # rule 2
        leave = min(r.departure_s, end_s)
        when = [(_free_from(booked[s], r.arrival_s, leave), i) for i, s in enumerate(sockets)]
        t, i = min(when, default=(math.inf, -1))
        if t == math.inf:
            turned_away.append(r.row)
            continue
        booked[sockets[i]].append((t, leave + CHANGEOVER_S, r.row))
        plugged[r.row] = (sockets[i], t)
        waited[r.row] = t - r.arrival_s
    placed = []
    for r in log.rows:
        if r.row not in plugged:
            continue
        (charger_id, k), at_s = plugged[r.row]
        ev, soc = _ev(r)
        placed.append(Placed(row=r.row, waited_s=waited.get(r.row, 0.0), arrival=Arrival(
            at_s=at_s, charger_id=charger_id, connector_id=k, ev=ev, soc=soc,
            leave_s=min(r.departure_s, end_s))))
    placed.sort(key=lambda p: (p.arrival.at_s, p.row))
    scenario = dataclasses.replace(site, arrivals=tuple(p.arrival for p in placed),
                                   description=site.description or f"replay of {log.source}")
    check(scenario)
    return Replay(scenario=scenario, log=log, placed=tuple(placed),
                  turned_away=tuple(sorted(turned_away)),
                  cut_at_end=tuple(r.row for r in log.rows
                                   if r.row in plugged and r.departure_s > end_s))


def _hhmm(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def with_fuse(s: Scenario, fuse_a: float) -> Scenario:
    """Rule 5, `--fuse-a`: ScenarioError if the site cannot run so."""
    if not 6.0 <= fuse_a <= 2000.0:
        raise ScenarioError(f"--fuse-a {fuse_a:g}: a fuse within 6..2000 A")
    groups = []
    for g in s.groups:
        c = g.config
        old = min(s.fuse_a[p] for p in c.phases)
        limit = fuse_a if c.limit_a >= old else min(c.limit_a, fuse_a)
        fallback = None if c.fallback_limit_a is None else min(c.fallback_limit_a, limit)
        try:
            config = dataclasses.replace(c, limit_a=limit, fallback_limit_a=fallback,
                                         margin_a=min(c.margin_a, limit))
        except ValueError as exc:
            raise ScenarioError(f"--fuse-a {fuse_a:g}: group {c.name}: {exc}") from exc
        groups.append(dataclasses.replace(g, config=config))
    out = dataclasses.replace(s, fuse_a=(fuse_a,) * 3, groups=tuple(groups))
    check(out)
    return out


def _next(p: Phase | None) -> Phase | None:
    """The phase after `p` in the rotation L1 -> L2 -> L3 -> L1."""
    return None if p is None else Phase((p + 1) % 3)


def with_sockets(s: Scenario, sockets: int) -> Scenario:
    """Rule 5, `--add-sockets`: ScenarioError if there is no charger to copy."""
    if not 1 <= sockets <= MAX_ADDED_SOCKETS:
        raise ScenarioError(f"--add-sockets {sockets}: within 1..{MAX_ADDED_SOCKETS}")
    agent_only = {g.config.name for g in s.groups if g.agent_only}
    template = next((c for c in reversed(s.chargers) if c.group not in agent_only), None)
    if template is None:
        raise ScenarioError(f"--add-sockets: {s.source} has only agent-only chargers "
                            f"(scenario A balances one charger); add a group to it")
    group = next(g.config for g in s.groups if g.config.name == template.group)
    rotate = len(group.phases) == 3
    taken = {c.charger_id for c in s.chargers}
    added: list[ChargerSpec] = []
    wiring = template.wiring
    n = 0
    while sockets > 0:
        n += 1
        charger_id = f"added-{n}"
        if charger_id in taken:
            continue
        if rotate:
            wiring = (_next(wiring[0]), _next(wiring[1]), _next(wiring[2]))
        added.append(dataclasses.replace(template, charger_id=charger_id, wiring=wiring,
                                         connectors=min(2, sockets)))
        sockets -= min(2, sockets)
    out = dataclasses.replace(s, chargers=s.chargers + tuple(added))
    check(out)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The command line's replay and what-if options (picklable, for `compare`)."""

    sessions: str | None = None
    day: date | None = None
    timezone: str | None = None
    ignore_stations: bool = False
    fuse_a: float | None = None
    add_sockets: int = 0


def prepare(site: Scenario, options: Options) -> tuple[Scenario, Replay | None]:
    """The site with the what-ifs applied and its session log replayed on it (the log
    of `options.sessions`, else the site file's `sessions_csv`, relative to that file).
    ScenarioError (SessionLogError for the log) names the file and where in it."""
    if options.fuse_a is not None:
        site = with_fuse(site, options.fuse_a)
    if options.add_sockets:
        site = with_sockets(site, options.add_sockets)
    if options.sessions is not None:
        sessions = Path(options.sessions)
    elif site.sessions_csv:
        sessions = Path(site.source).parent / site.sessions_csv
    else:
        return site, None
    if site.arrivals:
        raise ScenarioError(f"{site.source}: has arrivals; a site to replay sessions on "
                            f"gives none (the session log is its arrivals)")
    try:
        text = sessions.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SessionLogError(f"{sessions}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SessionLogError(f"{sessions}: not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start}); save the export as CSV UTF-8") from exc
    log = read_sessions(text, str(sessions), day=options.day, timezone=options.timezone)
    done = replay(site, log, ignore_stations=options.ignore_stations)
    return done.scenario, done
