"""Group membership on disk: which chargers belong to this master's group.

Theory of operation (manual 6.4.2):
 1. A charger joins by saying Hello on its AgentLink stream. `admit` refuses a Hello for
    another group, and an unknown charger while the group is closed; otherwise it
    records (or refreshes) the member with its Hello fields. The installer admits a
    charger ahead of its first Hello (`admit_id`, `io7ctl admit ID`, issue 11): a closed
    group then accepts it. A refused unknown charger is told to ask for exactly that.
 2. A member that stops talking is offline, not gone: the master keeps reserving what it
    may draw (the group cannot tell an offline charger from a removed one).
 3. "Rebuild the group" forgets only the chargers the installer names as physically
    removed, and only while they are not connected (`plan_rebuild`). An offline member
    not named keeps its reservation: a cut link looks exactly like a removed charger,
    and a cut-off agent still draws its lease, then its fail-safe current (issue 10:
    forgetting one on a 60 A Minimise group let 72 A per phase be drawn).
 4. Members survive a restart of the master: one SQLite table (WAL mode), one row per
    charger, the Hello fields as JSON, first/last seen as wall-clock ISO 8601 (UTC);
    a second table holds the admitted ids that have not said Hello yet.

`Member` is the static description a Hello gives (wiring, ratings). It validates itself
by building the allocation engine's `ChargerInput`, so a member the engine would refuse
cannot exist; a bad Hello raises `PeerError`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from master.allocation import ChargerInput, ConnectorInput, InvalidInputError, Phase
from master.errors import PeerError, RequestError

Wiring = tuple[Phase | None, Phase | None, Phase | None]

SCHEMA_VERSION = 2  # 2: the admitted table (a version 1 file gains it on open)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    charger_id TEXT PRIMARY KEY,
    grp        TEXT NOT NULL,
    hello      TEXT NOT NULL,  -- JSON: limit, versions, connectors with wiring and hard max
    first_seen TEXT NOT NULL,  -- wall clock, ISO 8601 UTC
    last_seen  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS admitted (
    charger_id  TEXT NOT NULL,
    grp         TEXT NOT NULL,
    admitted_at TEXT NOT NULL,  -- wall clock, ISO 8601 UTC
    PRIMARY KEY (charger_id, grp)
)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberConnector:
    """One connector as its Hello describes it: wiring (connector line -> site phase,
    None = not connected) and hardware max (cable, breaker), A per line."""

    connector_id: int
    wiring: Wiring
    hard_max_a: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A member charger: the fields of its Hello that the master needs.

    Raises PeerError (peer = the charger id) when the engine could not take it: empty
    ids, a Charger Current Limit outside 6-63 A (manual 6.3), 0 or > 2 connectors,
    duplicate connector ids, bad wiring, a hard max outside 0-80 A.
    """

    charger_id: str
    group: str
    charger_current_limit_a: float
    connectors: tuple[MemberConnector, ...]
    firmware_version: str = ""
    software_version: str = ""

    def __post_init__(self) -> None:
        peer = f"charger {self.charger_id!r}"
        if not self.group:
            raise PeerError(peer=peer, problem="Hello names no group")
        try:
            self.charger_input()
        except InvalidInputError as exc:
            raise PeerError(peer=peer, problem=f"Hello refused: {exc}") from exc

    def connector(self, connector_id: int) -> MemberConnector | None:
        """The connector with this id, or None."""
        return next((c for c in self.connectors if c.connector_id == connector_id), None)

    def charger_input(self, *, online: bool = False) -> ChargerInput:
        """The engine's view of this charger with no live data: every connector at its
        hard max, no demand. Used to check a group's feasibility (Minimise)."""
        return ChargerInput(
            charger_id=self.charger_id,
            current_limit_a=self.charger_current_limit_a,
            online=online,
            connectors=tuple(
                ConnectorInput(connector_id=c.connector_id, wiring=c.wiring,
                               max_current_a=c.hard_max_a)
                for c in self.connectors
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRecord:
    """A stored member with when it was first and last seen (wall clock, UTC)."""

    member: Member
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmitResult:
    """The outcome of a Hello. `new` is True when the charger was not a member before."""

    accepted: bool
    reason: str = ""  # why it was refused; "" when accepted
    new: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RebuildPlan:
    """What "rebuild the group" does (rule 3); every list sorted by charger id.

    `removed`: named and not connected, forgotten (reservation released). `kept`: every
    other member. `offline_kept`: kept members not connected and not named, which keep
    their reservation. `refused_connected`: named but connected now, so kept.
    """

    removed: tuple[str, ...]
    kept: tuple[str, ...]
    offline_kept: tuple[str, ...]
    refused_connected: tuple[str, ...]


def plan_rebuild(*, group: str, members: Iterable[str], connected: Iterable[str],
                 named: Iterable[str]) -> RebuildPlan:
    """Rule 3: decide which of `members` the installer's `named` chargers remove.

    Pure. Raises RequestError naming every id that is not a member (then nothing may be
    removed: a typo must not forget a different charger later).
    """
    ids, online, asked = set(members), set(connected), set(named)
    unknown = sorted(asked - ids)
    if unknown:
        raise RequestError(
            peer="RebuildGroup",
            problem=f"{', '.join(repr(u) for u in unknown)} not a member of group "
            f"{group!r}; nothing was removed: check the ids with io7ctl status")
    removed = sorted(asked - online)
    kept = sorted(ids - set(removed))
    return RebuildPlan(removed=tuple(removed), kept=tuple(kept),
                       offline_kept=tuple(i for i in kept if i not in online and i not in asked),
                       refused_connected=tuple(sorted(asked & online)))


def _hello_json(m: Member) -> str:
    return json.dumps({
        "charger_current_limit_a": m.charger_current_limit_a,
        "firmware_version": m.firmware_version,
        "software_version": m.software_version,
        "connectors": [
            {"connector_id": c.connector_id, "hard_max_a": c.hard_max_a,
             "wiring": [None if p is None else p.name for p in c.wiring]}
            for c in m.connectors
        ],
    }, sort_keys=True)


def _member_from_row(charger_id: str, group: str, hello: str) -> Member:
    data: dict[str, Any] = json.loads(hello)
    connectors = []
    for c in data["connectors"]:
        l1, l2, l3 = (None if name is None else Phase[name] for name in c["wiring"])
        connectors.append(MemberConnector(connector_id=int(c["connector_id"]),
                                          wiring=(l1, l2, l3),
                                          hard_max_a=float(c["hard_max_a"])))
    return Member(charger_id=charger_id, group=group,
                  charger_current_limit_a=float(data["charger_current_limit_a"]),
                  connectors=tuple(connectors),
                  firmware_version=str(data.get("firmware_version", "")),
                  software_version=str(data.get("software_version", "")))


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"wall-clock time {when!r} must be timezone-aware (UTC)")
    return when.isoformat()


class MembershipStore:
    """The members of group `group`, in the SQLite file at `path` (created if missing).

    `closed=True` refuses chargers that are not members yet. One instance per process;
    not thread-safe (the master's event loop owns it). Raises sqlite3.Error naming the
    path when the file cannot be opened (permissions, a directory that does not exist).
    """

    def __init__(self, path: Path, *, group: str, closed: bool = False) -> None:
        if not group:
            raise ValueError("MembershipStore needs a group name")
        self.path = path
        self.group = group
        self.closed = closed
        try:
            self._db = sqlite3.connect(path)
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise sqlite3.OperationalError(f"membership store {path}: {exc}") from exc

    def __enter__(self) -> MembershipStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; the store cannot be used afterwards."""
        self._db.close()

    def journal_mode(self) -> str:
        """SQLite's journal mode of the open file ('wal')."""
        row = self._db.execute("PRAGMA journal_mode").fetchone()
        return str(row[0])

    def records(self) -> list[MemberRecord]:
        """Every member of this group with first/last seen, ordered by charger id."""
        rows = self._db.execute(
            "SELECT charger_id, grp, hello, first_seen, last_seen FROM members "
            "WHERE grp = ? ORDER BY charger_id", (self.group,)).fetchall()
        return [
            MemberRecord(member=_member_from_row(cid, grp, hello),
                         first_seen=datetime.fromisoformat(first),
                         last_seen=datetime.fromisoformat(last))
            for cid, grp, hello, first, last in rows
        ]

    def known(self) -> list[Member]:
        """Every member of this group, ordered by charger id."""
        return [r.member for r in self.records()]

    def _is_member(self, charger_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM members WHERE charger_id = ? AND grp = ?",
                               (charger_id, self.group)).fetchone()
        return row is not None

    def admit(self, member: Member, *, now_wall: datetime) -> AdmitResult:
        """Rule 1: accept or refuse a Hello, and record an accepted one.

        Refused (nothing written): the Hello names another group; the charger is unknown
        while the group is closed. Accepted: the member is inserted, or its Hello fields
        and last_seen are refreshed (first_seen is kept).
        """
        if member.group != self.group:
            return AdmitResult(
                accepted=False,
                reason=f"charger {member.charger_id} is configured for group "
                f"{member.group!r}, this master leads {self.group!r}: fix the group name "
                "in the charger's settings",
            )
        known = self._is_member(member.charger_id)
        if not known and self.closed and not self._is_admitted(member.charger_id):
            return AdmitResult(
                accepted=False,
                reason=f"group {self.group!r} is closed to new chargers and "
                f"{member.charger_id} is not a member: the installer admits it with "
                f"io7ctl admit {member.charger_id}",
            )
        stamp = _iso(now_wall)
        with self._db:
            self._db.execute(
                "INSERT INTO members (charger_id, grp, hello, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(charger_id) DO UPDATE SET "
                "grp = excluded.grp, hello = excluded.hello, last_seen = excluded.last_seen, "
                "first_seen = CASE WHEN members.grp = excluded.grp THEN members.first_seen "
                "ELSE excluded.first_seen END",
                (member.charger_id, self.group, _hello_json(member), stamp, stamp),
            )
        return AdmitResult(accepted=True, new=not known)

    def _is_admitted(self, charger_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM admitted WHERE charger_id = ? AND grp = ?",
                               (charger_id, self.group)).fetchone()
        return row is not None

    def admit_id(self, charger_id: str, *, now_wall: datetime) -> bool:
        """Admit `charger_id` ahead of its first Hello (rule 1; the caller has checked
        it is a valid charger id). Returns False, changing nothing, when it is a member
        or admitted already."""
        if self._is_member(charger_id) or self._is_admitted(charger_id):
            return False
        with self._db:
            self._db.execute("INSERT INTO admitted (charger_id, grp, admitted_at) "
                             "VALUES (?, ?, ?)", (charger_id, self.group, _iso(now_wall)))
        return True

    def seen(self, charger_ids: Iterable[str], *, now_wall: datetime) -> None:
        """Refresh last_seen of these members (the shell calls it now and then, not
        every cycle: it is a disk write)."""
        stamp = _iso(now_wall)
        with self._db:
            self._db.executemany(
                "UPDATE members SET last_seen = ? WHERE charger_id = ? AND grp = ?",
                [(stamp, cid, self.group) for cid in charger_ids],
            )

    def forget(self, charger_ids: Iterable[str]) -> None:
        """Delete these members and their admission (rule 3: the `removed` of a
        `plan_rebuild`): a closed group refuses them again until admitted again."""
        rows = [(cid, self.group) for cid in charger_ids]
        with self._db:
            self._db.executemany("DELETE FROM members WHERE charger_id = ? AND grp = ?", rows)
            self._db.executemany("DELETE FROM admitted WHERE charger_id = ? AND grp = ?", rows)
