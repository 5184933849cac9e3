"""The OCPP side's durable state: transactions and their outbox here, the local list and
the authorisation cache in the mixed-in agent.ocpp.authlists.AuthLists.

One SQLite file shared with the other agent.ocpp stores (tables `transactions`, `outbox`
and the auth lists' `local_list`, `local_list_meta`, `auth_cache`), stdlib sqlite3, one
connection, WAL with synchronous=FULL: every method that writes has committed, and the
WAL has been fsynced, before it returns. Several writes of one call share one SQLite
transaction.

Rules, in order:
 1. Outbox: a FIFO of transaction-related messages (and SecurityEventNotification,
    agent.ocpp.security rule 2). Each gets a seq and an OCPP unique id
    (a uuid) at enqueue, kept for every resend. `peek` hands out the oldest; `delivered`
    (only for that one) removes it and, for a StartTransaction, records local id ->
    CSMS transactionId from the answer, in the same SQLite transaction.
 2. transactionId placeholder (agent.ocpp.transactions rule 1): a queued message with a
    `local_tx_id` carries that local id in `transactionId`; `peek` replaces it with the
    CSMS's id. FIFO order makes the id known by then: the StartTransaction is older and
    was delivered first. StartTransaction and StopTransaction open and close the
    transaction's row in the same SQLite transaction as their enqueue, so a crash can
    never leave a started transaction without its StartTransaction queued.
 3. Delivery is at least once. The one window: the CSMS processed a message, and the
    agent died before `delivered` committed. After a restart the same message goes out
    again with the same unique id, so a CSMS that de-duplicates on it (or on connector,
    idTag, timestamp and meterStart) sees one; one that does not may record it twice.
    Nothing is ever lost or duplicated on the agent's side.
 4. A message the CSMS keeps refusing (CALLERROR after TransactionMessageAttempts,
    counted with `record_attempt`) is dropped with `drop`. Dropping a StartTransaction
    drops its transaction's queued messages too (no CSMS id will ever exist for them);
    later ones for it are purged by `peek`.
 5. Bad input (unknown transaction, a second stop, a payload that is not JSON,
    delivering a message that is not the oldest) raises OutboxError and changes nothing;
    a malformed CSMS answer raises PeerError and changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.errors import AgentError, PeerError
from agent.ocpp.auth import check_id_tag, parse_iso
from agent.ocpp.authlists import AUTH_SCHEMA, AuthLists
from agent.ocpp.durable import connect_durable, write_transaction
from agent.ocpp.transactions import OutboxAction, OutgoingMessage, TransactionRecord

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS transactions (
        local_tx_id    INTEGER PRIMARY KEY AUTOINCREMENT,
        connector_id   INTEGER NOT NULL,
        id_tag         TEXT NOT NULL,
        meter_start_wh INTEGER NOT NULL,
        started_at     TEXT NOT NULL,   -- ISO 8601 UTC
        csms_tx_id     INTEGER,         -- NULL until StartTransaction.conf
        stopped        INTEGER NOT NULL DEFAULT 0,
        stop_reason    TEXT,
        meter_stop_wh  INTEGER,
        stopped_at     TEXT,
        last_energy_wh INTEGER NOT NULL,
        last_energy_at TEXT NOT NULL,
        start_dropped  INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        unique_id   TEXT NOT NULL UNIQUE,
        action      TEXT NOT NULL,
        payload     TEXT NOT NULL,      -- JSON, transactionId = local id placeholder
        local_tx_id INTEGER,
        attempts    INTEGER NOT NULL DEFAULT 0)""",
)
_ACTIONS = {a.value: a for a in OutboxAction}


class OutboxError(AgentError, ValueError):
    """The caller broke the outbox's contract (rule 5); nothing was written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedMessage:
    """An outbox entry as it goes on the wire: send `payload` as `action` with
    `unique_id`. `transactionId` is already the CSMS's (rule 2)."""

    seq: int
    unique_id: str
    action: OutboxAction
    payload: dict[str, Any]
    local_tx_id: int | None
    attempts: int


class OcppStore(AuthLists):
    """The store in the SQLite file at `path` (created if missing). One instance per
    process; not thread-safe. sqlite3.OperationalError naming the path if the file
    cannot be opened. `new_unique_id` makes the outbox's OCPP unique ids (tests inject)."""

    def __init__(self, path: Path, *, local_list_max_length: int = 1000,
                 send_local_list_max_length: int = 100, cache_max_entries: int = 1000,
                 new_unique_id: Callable[[], str] = lambda: str(uuid.uuid4()),
                 busy_timeout_s: float = 5.0) -> None:
        if min(local_list_max_length, send_local_list_max_length, cache_max_entries) < 1:
            raise ValueError("list, request and cache sizes must be >= 1")
        self.path = path
        self._list_max = local_list_max_length
        self._request_max = send_local_list_max_length
        self._cache_max = cache_max_entries
        self._new_unique_id = new_unique_id
        try:
            self._db = connect_durable(path, busy_timeout_s=busy_timeout_s)
            with write_transaction(self._db) as db:
                for statement in (*AUTH_SCHEMA, *_SCHEMA):
                    db.execute(statement)
        except sqlite3.Error as exc:
            raise sqlite3.OperationalError(f"OCPP store {path}: {exc}") from exc

    def __enter__(self) -> OcppStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; the store cannot be used afterwards."""
        self._db.close()

    def pragma(self, name: str) -> str:
        """A PRAGMA's value on this connection ('journal_mode' -> 'wal', 'synchronous'
        -> '2' for FULL)."""
        if name not in ("journal_mode", "synchronous"):
            raise ValueError(f"unknown pragma {name!r}")
        return str(self._db.execute(f"PRAGMA {name}").fetchone()[0])

    # -- transactions and outbox -----------------------------------------------------

    def next_local_tx_id(self) -> int:
        """The id for the next transaction (seed of agent.ocpp.transactions)."""
        row = self._db.execute("SELECT COALESCE(MAX(local_tx_id), 0) FROM transactions")
        seq = self._db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'transactions'").fetchone()
        return max(int(row.fetchone()[0]), 0 if seq is None else int(seq[0])) + 1

    def enqueue(self, action: str | OutboxAction, payload: Mapping[str, Any], *,
                local_tx_id: int | None, energy_wh: int | None = None,
                energy_at: datetime | None = None) -> int:
        """Queue one message; its seq. See `enqueue_all`."""
        act = action if isinstance(action, OutboxAction) else _ACTIONS.get(action)
        if act is None:
            raise OutboxError(f"{action!r} is not a transaction-related action "
                              f"({', '.join(_ACTIONS)})")
        msg = OutgoingMessage(action=act, payload=payload, local_tx_id=local_tx_id,
                              energy_wh=energy_wh, energy_at=energy_at)
        return self.enqueue_all([msg])[0]

    def enqueue_all(self, messages: Iterable[OutgoingMessage]) -> tuple[int, ...]:
        """Queue messages in order in one SQLite transaction (one step of
        ChargerSessions); their seqs. OutboxError and nothing queued if any is bad."""
        seqs: list[int] = []
        batch = list(messages)
        if not batch:
            return ()  # most steps: no lock, no commit
        with write_transaction(self._db) as db:
            for m in batch:
                seqs.append(self._enqueue_one(db, m))
        return tuple(seqs)

    def _enqueue_one(self, db: sqlite3.Connection, m: OutgoingMessage) -> int:
        p, tx_id = dict(m.payload), m.local_tx_id
        try:
            text = json.dumps(p, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise OutboxError(f"{m.action.value} payload is not JSON: {exc}") from exc
        if tx_id is None:
            # Only a security event, or meter values outside a transaction, have none.
            if m.action is not OutboxAction.SECURITY_EVENT_NOTIFICATION and (
                    m.action is not OutboxAction.METER_VALUES or "transactionId" in p):
                raise OutboxError(f"{m.action.value} needs local_tx_id (the placeholder "
                                  "in transactionId)")
        elif m.action is not OutboxAction.START_TRANSACTION and p.get("transactionId") != tx_id:
            raise OutboxError(f"{m.action.value}: transactionId must be the local id "
                              f"{tx_id} placeholder, got {p.get('transactionId')!r}")
        row = None if tx_id is None else db.execute(
            "SELECT stopped FROM transactions WHERE local_tx_id = ?", (tx_id,)).fetchone()
        try:
            if m.action is OutboxAction.START_TRANSACTION:
                if row is not None:
                    raise OutboxError(f"transaction {tx_id} was started already")
                db.execute(
                    "INSERT INTO transactions (local_tx_id, connector_id, id_tag, "
                    "meter_start_wh, started_at, last_energy_wh, last_energy_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (tx_id, int(p["connectorId"]), check_id_tag(p["idTag"]),
                     int(p["meterStart"]), parse_iso(p["timestamp"]).isoformat(),
                     int(p["meterStart"]), parse_iso(p["timestamp"]).isoformat()))
            elif tx_id is not None:
                if row is None or row[0]:
                    raise OutboxError(f"{m.action.value} for transaction {tx_id}, which "
                                      + ("is not known" if row is None else "was stopped"))
                if m.energy_wh is not None and m.energy_at is not None:
                    db.execute("UPDATE transactions SET last_energy_wh = ?, last_energy_at "
                               "= ? WHERE local_tx_id = ? AND last_energy_wh <= ?",
                               (m.energy_wh, m.energy_at.isoformat(), tx_id, m.energy_wh))
                if m.action is OutboxAction.STOP_TRANSACTION:
                    db.execute("UPDATE transactions SET stopped = 1, stop_reason = ?, "
                               "meter_stop_wh = ?, stopped_at = ? WHERE local_tx_id = ?",
                               (p.get("reason", "Local"), int(p["meterStop"]),
                                parse_iso(p["timestamp"]).isoformat(), tx_id))
        except OutboxError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise OutboxError(f"{m.action.value} payload misses or mangles a required "
                              f"field: {exc!r}") from exc
        cur = db.execute("INSERT INTO outbox (unique_id, action, payload, local_tx_id) "
                         "VALUES (?, ?, ?, ?)",
                         (self._new_unique_id(), m.action.value, text, tx_id))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def peek(self) -> QueuedMessage | None:
        """The oldest queued message with the CSMS's transactionId filled in (rule 2),
        None if the outbox is empty. Purges messages of a dropped start (rule 4)."""
        while True:
            row = self._db.execute("SELECT seq, unique_id, action, payload, local_tx_id, "
                                   "attempts FROM outbox ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            seq, unique_id, action, text, tx_id, attempts = row
            payload: dict[str, Any] = json.loads(text)
            if tx_id is not None and action != OutboxAction.START_TRANSACTION.value:
                tx = self._db.execute(
                    "SELECT csms_tx_id, start_dropped FROM transactions WHERE local_tx_id = ?",
                    (tx_id,)).fetchone()
                if tx is None:
                    raise OutboxError(f"message {seq}: transaction {tx_id} is not known")
                csms_id, dropped = tx
                if dropped:
                    with write_transaction(self._db) as db:
                        db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                    continue
                if csms_id is None:  # FIFO makes this impossible unless the file was edited
                    raise OutboxError(f"message {seq}: transaction {tx_id} has no CSMS id "
                                      "although its StartTransaction is not queued")
                payload["transactionId"] = int(csms_id)
            return QueuedMessage(seq=seq, unique_id=unique_id, action=_ACTIONS[action],
                                 payload=payload, local_tx_id=tx_id, attempts=attempts)

    def _head(self, seq: int) -> tuple[str, int | None]:
        row = self._db.execute("SELECT seq, action, local_tx_id FROM outbox "
                               "ORDER BY seq LIMIT 1").fetchone()
        if row is None or row[0] != seq:
            raise OutboxError(f"message {seq} is not the oldest queued one "
                              f"({None if row is None else row[0]}): deliver in order")
        return str(row[1]), row[2]

    def delivered(self, seq: int, response: Mapping[str, Any]) -> None:
        """The CSMS answered message `seq` (the oldest) with `response` (the .conf
        payload, camelCase). PeerError if a StartTransaction.conf has no integer
        transactionId; OutboxError if `seq` is not the oldest. Nothing changes then."""
        action, tx_id = self._head(seq)
        csms_id = response.get("transactionId")
        if action == OutboxAction.START_TRANSACTION.value and (
                isinstance(csms_id, bool) or not isinstance(csms_id, int)):
            raise PeerError(peer="CSMS", problem=f"StartTransaction.conf without an integer "
                            f"transactionId: {dict(response)!r}")
        with write_transaction(self._db) as db:
            if action == OutboxAction.START_TRANSACTION.value:
                db.execute("UPDATE transactions SET csms_tx_id = ? WHERE local_tx_id = ?",
                           (csms_id, tx_id))
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def record_attempt(self, seq: int) -> int:
        """Count a failed send of message `seq` (CALLERROR or no answer); the count."""
        with write_transaction(self._db) as db:
            cur = db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
            if cur.rowcount != 1:
                raise OutboxError(f"message {seq} is not queued")
            return int(db.execute("SELECT attempts FROM outbox WHERE seq = ?",
                                  (seq,)).fetchone()[0])

    def drop(self, seq: int) -> int:
        """Rule 4: give up on the oldest message; how many messages were removed."""
        action, tx_id = self._head(seq)
        with write_transaction(self._db) as db:
            if action == OutboxAction.START_TRANSACTION.value:
                db.execute("UPDATE transactions SET start_dropped = 1 WHERE local_tx_id = ?",
                           (tx_id,))
                return db.execute("DELETE FROM outbox WHERE seq = ? OR local_tx_id = ?",
                                  (seq, tx_id)).rowcount
            return db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount

    def pending_count(self) -> int:
        """How many messages wait."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def pending(self) -> list[QueuedMessage]:
        """Every queued message in order, payloads as stored (local placeholders)."""
        rows = self._db.execute("SELECT seq, unique_id, action, payload, local_tx_id, "
                                "attempts FROM outbox ORDER BY seq").fetchall()
        return [QueuedMessage(seq=r[0], unique_id=r[1], action=_ACTIONS[r[2]],
                              payload=json.loads(r[3]), local_tx_id=r[4], attempts=r[5])
                for r in rows]

    def _records(self, where: str, args: tuple[Any, ...]) -> list[TransactionRecord]:
        rows = self._db.execute(
            "SELECT local_tx_id, connector_id, id_tag, meter_start_wh, started_at, "
            f"last_energy_wh, last_energy_at, csms_tx_id FROM transactions WHERE {where} "
            "ORDER BY local_tx_id", args).fetchall()
        return [TransactionRecord(local_tx_id=r[0], connector_id=r[1], id_tag=r[2],
                                  meter_start_wh=r[3], started_at=parse_iso(r[4]),
                                  last_energy_wh=r[5], last_energy_at=parse_iso(r[6]),
                                  csms_tx_id=r[7]) for r in rows]

    def open_transactions(self) -> list[TransactionRecord]:
        """Transactions started and not stopped (restart recovery), by local id."""
        return self._records("stopped = 0", ())

    def transaction(self, local_tx_id: int) -> TransactionRecord | None:
        """A transaction by local id (stopped or not), None if unknown."""
        found = self._records("local_tx_id = ?", (local_tx_id,))
        return found[0] if found else None

    def local_tx_id_for(self, csms_tx_id: int) -> int | None:
        """The local id of the CSMS's transactionId (RemoteStopTransaction), the newest
        if a CSMS reused one; None if unknown."""
        row = self._db.execute("SELECT MAX(local_tx_id) FROM transactions "
                               "WHERE csms_tx_id = ?", (csms_tx_id,)).fetchone()
        return None if row[0] is None else int(row[0])
