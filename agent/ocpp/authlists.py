"""The local authorisation list and the authorisation cache on disk (OCPP 1.6 3.5, 5.15).

A mixin of agent.ocpp.store.OcppStore, which owns the SQLite connection and the sizes:
tables `local_list`, `local_list_meta` and `auth_cache` of the agent's ocpp.db, every
write committed and fsynced before it returns (agent.ocpp.durable). agent.ocpp.auth
judges the entries it hands out.

Rules, in order:
 1. Local list (OCPP 1.6 5.15 SendLocalList): Full replaces the list (every entry needs
    its idTagInfo); Differential needs a version above the stored one (else
    VersionMismatch) and adds/updates entries with an idTagInfo, removes those without.
    A request with duplicate idTags, more than `send_local_list_max_length` entries or a
    resulting list above `local_list_max_length` fails and changes nothing.
    GetLocalListVersion is 0 while the list is empty (5.10), else the stored version.
 2. Config tags (manual 6.5, the RFID whitelist) are installed by `seed_local_list` as a
    Full list at version 0 (= "nothing from the CSMS") only while the CSMS has never set
    the list: until then the config file owns it (edits apply at the next start); once
    the CSMS sent a list, the CSMS owns it and config tags are ignored.
 3. The cache keeps one IdTagInfo per idTag (case-insensitive), expiry included (judged
    by `agent.ocpp.auth.effective_status`). Above `cache_max_entries` the oldest
    non-Accepted entries go first, then the oldest (OCPP 1.6 3.5.1).
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.ocpp.auth import AuthorizationStatus, IdTagInfo, check_id_tag, parse_iso
from agent.ocpp.durable import write_transaction

AUTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS local_list (
        id_tag        TEXT PRIMARY KEY COLLATE NOCASE,
        status        TEXT NOT NULL,
        expiry_date   TEXT,             -- ISO 8601 with zone, NULL = none
        parent_id_tag TEXT)""",
    """CREATE TABLE IF NOT EXISTS local_list_meta (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        source  TEXT NOT NULL CHECK (source IN ('config', 'csms')))""",
    """CREATE TABLE IF NOT EXISTS auth_cache (
        id_tag        TEXT PRIMARY KEY COLLATE NOCASE,
        status        TEXT NOT NULL,
        expiry_date   TEXT,
        parent_id_tag TEXT)""",
)


class _ListTooLongError(Exception):
    """Internal: a Differential update would overflow the list (rolled back)."""


class UpdateType(enum.Enum):
    FULL = "Full"
    DIFFERENTIAL = "Differential"


class UpdateStatus(enum.Enum):
    """SendLocalList.conf status."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationData:
    """One SendLocalList entry; `id_tag_info` None = remove (Differential only)."""

    id_tag: str
    id_tag_info: IdTagInfo | None = None

    def __post_init__(self) -> None:
        check_id_tag(self.id_tag)


def _info(status: str, expiry: str | None, parent: str | None) -> IdTagInfo:
    return IdTagInfo(status=AuthorizationStatus(status),
                     expiry_date=None if expiry is None else parse_iso(expiry),
                     parent_id_tag=parent)


def _info_row(info: IdTagInfo) -> tuple[str, str | None, str | None]:
    expiry = None if info.expiry_date is None else info.expiry_date.isoformat()
    return info.status.value, expiry, info.parent_id_tag


class AuthLists:
    """Rules 1-3, mixed into OcppStore: expects its connection and sizes."""

    _db: sqlite3.Connection
    _list_max: int  # LocalAuthListMaxLength
    _request_max: int  # SendLocalListMaxLength
    _cache_max: int

    # -- local list (rules 1-2) ------------------------------------------------------

    def _meta(self) -> tuple[int, str] | None:
        row = self._db.execute("SELECT version, source FROM local_list_meta").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def local_list_source(self) -> str | None:
        """Rule 2: who owns the list: "config" (the config's tags), "csms" (a
        SendLocalList was taken: config tags are ignored), None (never set)."""
        meta = self._meta()
        return None if meta is None else meta[1]

    def local_list_version(self) -> int:
        """GetLocalListVersion: 0 while the list is empty, else the stored version."""
        meta = self._meta()
        if meta is None or self._db.execute("SELECT 1 FROM local_list").fetchone() is None:
            return 0
        return meta[0]

    def local_entry(self, id_tag: str) -> IdTagInfo | None:
        """The list's entry for `id_tag` (any case), None if it is not on the list."""
        row = self._db.execute("SELECT status, expiry_date, parent_id_tag FROM local_list "
                               "WHERE id_tag = ?", (id_tag,)).fetchone()
        return None if row is None else _info(*row)

    def local_list(self) -> list[AuthorizationData]:
        """The whole list, ordered by idTag."""
        rows = self._db.execute("SELECT id_tag, status, expiry_date, parent_id_tag "
                                "FROM local_list ORDER BY id_tag").fetchall()
        return [AuthorizationData(id_tag=r[0], id_tag_info=_info(*r[1:])) for r in rows]

    def send_local_list(self, version: int, update_type: UpdateType,
                        entries: Sequence[AuthorizationData]) -> UpdateStatus:
        """Rule 1: apply a SendLocalList.req; the status for its .conf."""
        tags = [e.id_tag.casefold() for e in entries]
        if (isinstance(version, bool) or not isinstance(version, int) or version < 0
                or len(entries) > self._request_max or len(set(tags)) != len(tags)):
            return UpdateStatus.FAILED
        meta = self._meta()
        if update_type is UpdateType.FULL:
            if len(entries) > self._list_max or any(e.id_tag_info is None for e in entries):
                return UpdateStatus.FAILED
        elif version <= (0 if meta is None else meta[0]):
            return UpdateStatus.VERSION_MISMATCH
        try:
            with write_transaction(self._db) as db:
                if update_type is UpdateType.FULL:
                    db.execute("DELETE FROM local_list")
                for e in entries:
                    if e.id_tag_info is None:
                        db.execute("DELETE FROM local_list WHERE id_tag = ?", (e.id_tag,))
                    else:
                        db.execute("INSERT OR REPLACE INTO local_list VALUES (?, ?, ?, ?)",
                                   (e.id_tag, *_info_row(e.id_tag_info)))
                if db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0] > self._list_max:
                    raise _ListTooLongError
                db.execute("INSERT OR REPLACE INTO local_list_meta VALUES (1, ?, 'csms')",
                           (version,))
        except _ListTooLongError:
            return UpdateStatus.FAILED  # rolled back
        return UpdateStatus.ACCEPTED

    def seed_local_list(self, id_tags: Iterable[str]) -> bool:
        """Rule 2: install the config file's tags (Accepted, no expiry) as a Full list at
        version 0 unless the CSMS owns the list. True if installed; ValueError for a bad
        tag or too many (nothing changes)."""
        tags = {check_id_tag(t, what="config idTag").casefold(): t for t in id_tags}
        if len(tags) > self._list_max:
            raise ValueError(f"{len(tags)} config idTags, the list holds {self._list_max}")
        meta = self._meta()
        if meta is not None and meta[1] == "csms":
            return False
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM local_list")
            db.executemany("INSERT INTO local_list VALUES (?, 'Accepted', NULL, NULL)",
                           [(t,) for t in tags.values()])
            db.execute("INSERT OR REPLACE INTO local_list_meta VALUES (1, 0, 'config')")
        return True

    # -- authorisation cache (rule 3) ------------------------------------------------

    def cache_put(self, id_tag: str, info: IdTagInfo) -> None:
        """Insert or replace the tag's entry (it becomes the newest), evicting if full."""
        check_id_tag(id_tag)
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM auth_cache WHERE id_tag = ?", (id_tag,))
            db.execute("INSERT INTO auth_cache VALUES (?, ?, ?, ?)",
                       (id_tag, *_info_row(info)))
            excess = db.execute("SELECT COUNT(*) FROM auth_cache").fetchone()[0] - self._cache_max
            if excess > 0:
                db.execute("DELETE FROM auth_cache WHERE rowid IN (SELECT rowid FROM "
                           "auth_cache ORDER BY status = 'Accepted', rowid LIMIT ?)", (excess,))

    def cache_get(self, id_tag: str) -> IdTagInfo | None:
        """The cached IdTagInfo (any case), None if the tag is not cached."""
        row = self._db.execute("SELECT status, expiry_date, parent_id_tag FROM auth_cache "
                               "WHERE id_tag = ?", (id_tag,)).fetchone()
        return None if row is None else _info(*row)

    def clear_cache(self) -> None:
        """ClearCache.req."""
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM auth_cache")

    def cache_size(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM auth_cache").fetchone()[0])
