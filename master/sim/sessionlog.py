"""Charging sessions from a back office's export (CSV): read and checked, pure.

A site owner replays what really happened (`io7-sim run site.toml --sessions log.csv`);
master.sim.replay puts the rows on the site's sockets. Rules, in order:
1. Columns are found by their header (case, spaces, `_`, `-` and brackets ignored, so
   `Energy (kWh)` is `energy_kwh`). Required: arrival, departure, energy_kwh; optional:
   station, connector, phases, max_current_a, timezone. ACN-Data's (Caltech) names are
   aliases: connectionTime, disconnectTime, kWhDelivered, stationID, timezone. Other
   columns (sessionID, userID, ...) are ignored and listed; one that is a near miss of a
   known name ("phase") is refused, since a typo must not be silently ignored.
2. A time is "HH:MM[:SS]" within the replayed day (up to 48:00: past 24:00 is the next
   morning), an ISO 8601 local date-time ("2024-03-05T07:30", "2024-03-05 07:30:15"), or
   a time with its UTC offset ("...+01:00", "...Z", RFC 1123 "Wed, 25 Apr 2018 11:08:04
   GMT", as ACN-Data writes), which is turned into the site's local wall-clock time by
   the `timezone` given (the command line's, else the row's `timezone` cell).
3. The replayed day is the date the sessions arrive on; a file of several days needs
   one chosen (`day`), and rows arriving on other days are left out (counted).
4. energy_kwh is what the car takes from the grid when nothing holds it back (0-250).
   phases (1 or 3) defaults to 3, max_current_a (the onboard charger, 6-80 A per phase)
   to 16: an 11 kW car.
5. Every error is one line naming the file, the row (a spreadsheet's: the header is row
   1) and the column as the header writes it, and what is allowed.
"""

from __future__ import annotations

import csv
import difflib
import email.utils
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from master.sim.scenario import SECONDS_PER_DAY, ScenarioError

DEFAULT_PHASES = 3
DEFAULT_MAX_CURRENT_A = 16.0  # an 11 kW onboard charger, the commonest three-phase car
MAX_ENERGY_KWH = 250.0  # above the largest battery an AC car park sees (~210 kWh)

# canonical column -> accepted header names, normalised (rule 1)
COLUMNS: dict[str, tuple[str, ...]] = {
    "arrival": ("arrival", "connectiontime", "pluginstarttime", "plugstartdatetime"),
    "departure": ("departure", "disconnecttime", "plugenddatetime"),
    "energy_kwh": ("energykwh", "kwhdelivered"),
    "station": ("station", "stationid", "chargerid"),
    "connector": ("connector", "connectorid"),
    "phases": ("phases",),
    "max_current_a": ("maxcurrenta",),
    "timezone": ("timezone",),
}
REQUIRED = ("arrival", "departure", "energy_kwh")
Where = Callable[[int, str], str]  # (row, canonical column) -> "file: row N, column X"
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class SessionLogError(ScenarioError):
    """The session file cannot be replayed as written: fix the file (the message says
    the row and the column)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    """One session, its times in seconds from the replayed day's midnight (wall clock)."""

    row: int
    arrival_s: float
    departure_s: float
    energy_wh: float
    station: str | None
    connector: int | None
    phases: int
    max_current_a: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLog:
    source: str
    day: date | None  # None: every time was "HH:MM"
    rows: tuple[SessionRow, ...]
    other_days: int  # rows left out: they arrived on another day (rule 3)
    ignored_columns: tuple[str, ...]
    headers: dict[str, str]  # canonical column -> its header as the file writes it

    def where(self, row: int, column: str) -> str:
        """"file: row N, column X" for an error about one cell."""
        return f"{self.source}: row {row}, column {self.headers.get(column, column)}"


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _header(cells: list[str], source: str) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Column index and header per canonical column, and the ignored headers (rule 1)."""
    alias = {a: canon for canon, names in COLUMNS.items() for a in names}
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    ignored = []
    for i, cell in enumerate(cells):
        name = cell.strip()
        canon = alias.get(_norm(name))
        if canon is None:
            near = difflib.get_close_matches(_norm(name), list(alias), n=1, cutoff=0.8)
            if near and name:
                raise SessionLogError(
                    f"{source}: row 1, column {name}: not a known column; did you mean "
                    f"{alias[near[0]]}? (known: {', '.join(COLUMNS)})")
            ignored.append(name)
            continue
        if canon in index:
            raise SessionLogError(f"{source}: row 1, column {name}: gives {canon} again "
                                  f"(column {written[canon]} already does); keep one")
        index[canon], written[canon] = i, name
    for canon in REQUIRED:
        if canon not in index:
            raise SessionLogError(
                f"{source}: row 1: no {canon} column; the header needs arrival, departure "
                f"and energy_kwh (ACN-Data's connectionTime, disconnectTime and "
                f"kWhDelivered are understood too)")
    return index, written, ignored


@dataclass(frozen=True, slots=True)
class _Moment:
    day: date | None
    seconds: float  # since that day's midnight (or the replayed day's, without a date)


def _zone(name: str) -> tzinfo:
    """An IANA time zone; ValueError saying so if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)") from exc


def _moment(cell: str, zone: tzinfo | None) -> _Moment:
    """Rule 2; ValueError with what is allowed."""
    text = cell.strip()
    m = _HHMM.match(text)
    if m:
        h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
        secs = h * 3600 + mi * 60 + s
        if mi < 60 and s < 60 and secs <= 2 * SECONDS_PER_DAY:
            return _Moment(None, float(secs))
        raise ValueError(f"{text!r} is not a time HH:MM[:SS] within 00:00-48:00")
    stamp: datetime | None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        try:
            stamp = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            stamp = None
    if stamp is None:
        raise ValueError(f"{text!r} is not a time: give HH:MM, an ISO 8601 date-time "
                         f"(2024-03-05T07:30) or an RFC 1123 one (Wed, 25 Apr 2018 "
                         f"11:08:04 GMT)")
    if stamp.tzinfo is not None:
        if zone is None:
            raise ValueError(f"{text!r} carries a UTC offset: say the site's time zone "
                             f"with --timezone (e.g. Europe/Berlin) or a timezone column")
        stamp = stamp.astimezone(zone)
    midnight = stamp.replace(hour=0, minute=0, second=0, microsecond=0)
    return _Moment(stamp.date(), (stamp - midnight).total_seconds())


def _number(cell: str, decimal_comma: bool) -> float:
    text = cell.strip()
    if decimal_comma:
        text = text.replace(",", ".")
    value = float(text)  # ValueError for words
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_sessions(text: str, source: str, *, day: date | None = None,
                  timezone: str | None = None) -> SessionLog:
    """The sessions of `text` (a CSV file's content) on the replayed day.

    `day` picks one day of a longer file; `timezone` (IANA) is the site's local time
    for times written with a UTC offset. SessionLogError names the row and column."""
    lines = text.lstrip("\ufeff").splitlines()
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise SessionLogError(f"{source}: empty; expected a header row (arrival, "
                              f"departure, energy_kwh, ...) and a row per session")
    # the delimiter of the header: ',' or, as spreadsheets in decimal-comma locales
    # write, ';' (then "12,5" is 12.5); a tab as some exports do
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = list(csv.reader(lines, delimiter=delimiter))
    index, written, ignored = _header(rows[0], source)
    try:
        fixed_zone = _zone(timezone) if timezone else None
    except ValueError as exc:
        raise SessionLogError(f"--timezone: {exc}") from exc

    def where(n: int, canon: str) -> str:
        return f"{source}: row {n}, column {written.get(canon, canon)}"

    parsed: list[tuple[int, _Moment, _Moment, float, str | None, int | None, int, float]] = []
    width = len(rows[0])
    for n, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line
        if len(cells) != width:
            raise SessionLogError(f"{source}: row {n}: {len(cells)} cells, the header has "
                                  f"{width}; quote a cell that holds {delimiter!r}")

        def cell(canon: str, cells: list[str] = cells) -> str:
            return cells[index[canon]].strip() if canon in index else ""

        zone = fixed_zone
        if zone is None and cell("timezone"):
            try:
                zone = _zone(cell("timezone"))
            except ValueError as exc:
                raise SessionLogError(f"{where(n, 'timezone')}: {exc}") from exc
        moments = []
        for canon in ("arrival", "departure"):
            if not cell(canon):
                raise SessionLogError(f"{where(n, canon)}: empty; every session needs "
                                      f"its {canon} time")
            try:
                moments.append(_moment(cell(canon), zone))
            except ValueError as exc:
                raise SessionLogError(f"{where(n, canon)}: {exc}") from exc
        energy = _checked(cell("energy_kwh"), n, "energy_kwh", where, delimiter != ",",
                          None, 0.0, MAX_ENERGY_KWH, "an energy in kWh")
        phases = _checked(cell("phases"), n, "phases", where, False, DEFAULT_PHASES, 1, 3,
                          "1 or 3 phases")
        if phases not in (1, 3):
            raise SessionLogError(f"{where(n, 'phases')}: {cell('phases')!r}: a car "
                                  f"charges on 1 or 3 phases")
        max_a = _checked(cell("max_current_a"), n, "max_current_a", where, delimiter != ",",
                         DEFAULT_MAX_CURRENT_A, 6.0, 80.0, "a current in A per phase")
        connector: int | None = None
        if cell("connector"):
            c = _checked(cell("connector"), n, "connector", where, False, None, 1, 2,
                         "connector 1 or 2")
            if c != int(c):
                raise SessionLogError(f"{where(n, 'connector')}: {cell('connector')!r} is "
                                      f"not connector 1 or 2")
            connector = int(c)
            if not cell("station"):
                raise SessionLogError(f"{where(n, 'connector')}: a connector needs its "
                                      f"station; fill in the station or empty both")
        parsed.append((n, moments[0], moments[1], energy * 1000.0, cell("station") or None,
                       connector, int(phases), max_a))
    if not parsed:
        raise SessionLogError(f"{source}: no sessions after the header row")
    return _on_day(parsed, source, day, written, ignored)


def _checked(text: str, n: int, canon: str, where: Where, decimal_comma: bool,
             default: float | None, lo: float, hi: float, what: str) -> float:
    """A number cell within lo..hi (an empty cell is `default`, or an error without one)."""
    if not text:
        if default is None:
            raise SessionLogError(f"{where(n, canon)}: empty; expected {what} "
                                  f"within {lo:g}..{hi:g}")
        return default
    try:
        value = _number(text, decimal_comma)
    except ValueError:
        value = math.nan
    if not lo <= value <= hi:
        raise SessionLogError(f"{where(n, canon)}: {text!r} is not {what} within "
                              f"{lo:g}..{hi:g}")
    return value


def _on_day(parsed: list[tuple[int, _Moment, _Moment, float, str | None, int | None, int,
                               float]],
            source: str, day: date | None, written: dict[str, str],
            ignored: list[str]) -> SessionLog:
    """Rule 3: the replayed day, and every time in seconds from its midnight."""
    dates = sorted({a.day for _, a, *_ in parsed if a.day is not None})
    if day is None and len(dates) > 1:
        raise SessionLogError(f"{source}: the sessions arrive on {len(dates)} days "
                              f"({dates[0]} .. {dates[-1]}); choose one with --day "
                              f"YYYY-MM-DD")
    chosen = day if day is not None else (dates[0] if dates else None)
    out, other = [], 0
    for n, arrival, departure, energy_wh, station, connector, phases, max_a in parsed:
        if arrival.day is not None and arrival.day != chosen:
            other += 1
            continue
        at_s = arrival.seconds
        leave_s = departure.seconds
        if departure.day is not None and chosen is not None:
            leave_s += (departure.day - chosen).days * SECONDS_PER_DAY
        if leave_s <= at_s:
            raise SessionLogError(f"{source}: row {n}, column "
                                  f"{written['departure']}: not after the arrival; a "
                                  f"session leaves after it arrives")
        out.append(SessionRow(row=n, arrival_s=at_s, departure_s=leave_s, energy_wh=energy_wh,
                              station=station, connector=connector, phases=phases,
                              max_current_a=max_a))
    if not out:
        raise SessionLogError(f"{source}: no session arrives on {chosen} (the file covers "
                              f"{dates[0]} .. {dates[-1]})" if dates else
                              f"{source}: no sessions")
    return SessionLog(source=source, day=chosen, rows=tuple(out), other_days=other,
                      ignored_columns=tuple(ignored), headers=written)
