"""Transactions and meter values of one charger's connectors (OCPP 1.6J), pure.

The shell calls `ChargerSessions.step(now, samples, settings)` once per cycle with one
`ConnectorSample` per connector (OCPP status, plug, the authorised idTag, the socket
meter's reading, the offered current, an explicit stop request) and gets back the
transaction-related messages to queue, in order, as `OutgoingMessage`s (action + camelCase
JSON payload as the OCPP 1.6 JSON schemas want, timestamps ISO 8601 UTC with 'Z'). It
hands them to `agent.ocpp.store.OcppStore.enqueue_all`, which commits them before the
next step. No I/O and no clock: `now` is a timezone-aware wall-clock datetime.

Rules, in order:
 1. Local transaction ids. The core numbers transactions itself from `next_local_tx_id`
    (the shell seeds it with `OcppStore.next_local_tx_id()`). The CSMS's transactionId is
    unknown until StartTransaction.conf, possibly much later (offline), so every payload
    about a transaction (MeterValues, StopTransaction) carries the LOCAL id as a
    placeholder in `transactionId`, and `OutgoingMessage.local_tx_id` says so; the
    store's outbox replaces it with the CSMS's id when it hands the message out. A
    message without `local_tx_id` has no placeholder (connector-level meter values).
 2. Start: the EV is plugged (pilot not A), an idTag is authorised, the connector is
    neither Faulted nor Unavailable, there is no transaction on it, and the meter
    answers (meterStart is the energy register, floored to whole Wh; without a reading
    the start waits: OCPP has no way to say "unknown meterStart"). After a transaction
    ended, the same authorisation does not start another one: the idTag must be
    withdrawn (None) or the EV unplugged first.
 3. Stop, first match: an explicit `StopRequest` (Local, Remote, DeAuthorized, resets,
    UnlockCommand, EmergencyStop, Other, ...); unplugged -> EVDisconnected, only if
    StopTransactionOnEVSideDisconnect (otherwise the transaction stays open); the idTag
    withdrawn without a request -> DeAuthorized. The shell gives explicit reasons for
    everything else (a card that stops = Local, RemoteStopTransaction = Remote, ...).
 4. Restart recovery: transactions found open in the store at start are stopped on the
    first step with `recovery_reason` (PowerLoss by default: the agent did not stop them,
    so it died; OCPP 1.6 stops, it does not resume). A new transaction starts in the same
    step if the EV is still plugged and authorised. For a planned restart the shell
    stops transactions itself first (reason Reboot, SoftReset or HardReset).
 5. Meter values (agent.ocpp.metervalues: what a reading becomes, when one is due).
    Sampled (MeterValueSampleInterval, from the transaction's start): context
    Sample.Periodic, only while a transaction runs. Clock-aligned
    (ClockAlignedDataInterval, from 00:00:00 UTC): context Sample.Clock, with the
    transactionId while one runs and connector-level (no transactionId) otherwise.
 6. No fake values. A failed meter (reading None) gives no meter measurands: they are
    left out (Current.Offered, which is not measured, stays); a message left with no
    values is not sent. meterStop with a dead meter is the last good reading, and the
    Transaction.End value in transactionData carries that reading's own timestamp; a
    `Note` says so for the log.
 7. `step` validates everything first: a bad sample raises ValueError and changes nothing.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from agent.faults import OcppStatus
from agent.ocpp.auth import check_id_tag, iso_utc
from agent.ocpp.metervalues import (
    Measurand,
    MeterSettings,
    ReadingContext,
    clock_aligned_due,
    energy_wh,
    periodic_due,
    sampled_values,
)
from hw.capabilities import MeterReading


class StopReason(enum.Enum):
    """OCPP 1.6 Reason of StopTransaction.req."""

    EMERGENCY_STOP = "EmergencyStop"
    EV_DISCONNECTED = "EVDisconnected"
    HARD_RESET = "HardReset"
    LOCAL = "Local"
    OTHER = "Other"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    REMOTE = "Remote"
    SOFT_RESET = "SoftReset"
    UNLOCK_COMMAND = "UnlockCommand"
    DE_AUTHORIZED = "DeAuthorized"


class OutboxAction(enum.Enum):
    """The OCPP actions that go through the durable outbox: transaction-related ones, and
    the security whitepaper's SecurityEventNotification (agent.ocpp.security rule 2)."""

    START_TRANSACTION = "StartTransaction"
    METER_VALUES = "MeterValues"
    STOP_TRANSACTION = "StopTransaction"
    SECURITY_EVENT_NOTIFICATION = "SecurityEventNotification"


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRequest:
    """Stop the connector's transaction; `id_tag`: the card that asked (reason Local)."""

    reason: StopReason
    id_tag: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.reason, StopReason):
            raise ValueError(f"reason must be a StopReason, got {self.reason!r}")
        if self.id_tag is not None:
            check_id_tag(self.id_tag)


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """A connector after its machine's step, as the agent hands it to the OCPP side
    (agent.ocpp.sessions adds the authorisation and any stop: a `ConnectorSample`)."""

    connector_id: int
    status: OcppStatus
    plugged: bool
    meter: MeterReading | None
    offered_a: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorSample:
    """One cycle's view of a connector. `id_tag`: the authorisation that holds now (None:
    none); `meter`: None when the meter did not answer; `offered_a`: the offer (A)."""

    connector_id: int
    status: OcppStatus
    plugged: bool
    id_tag: str | None
    meter: MeterReading | None
    offered_a: float
    stop: StopRequest | None = None

    def __post_init__(self) -> None:
        if isinstance(self.connector_id, bool) or self.connector_id < 1:
            raise ValueError(f"connector ids start at 1, got {self.connector_id!r}")
        if not isinstance(self.status, OcppStatus):
            raise ValueError(f"status must be an OcppStatus, got {self.status!r}")
        if self.id_tag is not None:
            check_id_tag(self.id_tag)
        if self.meter is not None and not isinstance(self.meter, MeterReading):
            raise ValueError(f"meter must be a MeterReading or None, got {self.meter!r}")
        if not (math.isfinite(self.offered_a) and self.offered_a >= 0.0):
            raise ValueError(f"offered_a must be >= 0 A, got {self.offered_a}")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionRecord:
    """A transaction as persisted (agent.ocpp.store) and as running here.

    `last_energy_wh` / `last_energy_at`: the last good register reading (meterStop's
    fall-back when the meter is dead); `last_sample_at`: the last sampled-value slot."""

    local_tx_id: int
    connector_id: int
    id_tag: str
    meter_start_wh: int
    started_at: datetime
    last_energy_wh: int
    last_energy_at: datetime
    csms_tx_id: int | None = None
    last_sample_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.local_tx_id < 1 or self.connector_id < 1:
            raise ValueError(f"local_tx_id and connector_id start at 1, got "
                             f"{self.local_tx_id}, {self.connector_id}")
        check_id_tag(self.id_tag)
        if self.started_at.tzinfo is None or self.last_energy_at.tzinfo is None:
            raise ValueError("transaction times must be timezone-aware (UTC)")
        if not 0 <= self.meter_start_wh <= self.last_energy_wh:
            raise ValueError(f"energy must not go backwards: start {self.meter_start_wh} Wh, "
                             f"last {self.last_energy_wh} Wh")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """A message for the outbox. `local_tx_id`: the transaction it belongs to (its
    `transactionId` is that local id, rule 1); `energy_wh` / `energy_at`: the good
    register reading this step had, for the store's last-good-reading record."""

    action: OutboxAction
    payload: Mapping[str, Any]
    local_tx_id: int | None
    energy_wh: int | None = None
    energy_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """Something the log should say (e.g. meterStop came from an old reading)."""

    connector_id: int
    local_tx_id: int | None
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStep:
    messages: tuple[OutgoingMessage, ...] = ()
    notes: tuple[Note, ...] = ()


@dataclass(slots=True)
class _Conn:
    tx: TransactionRecord | None = None
    consumed: bool = False  # rule 2: the current authorisation already had its transaction
    waiting_for_meter: bool = False
    last_step_at: datetime | None = None


class ChargerSessions:
    """The transactions of one charger's connectors (rules 1-7)."""

    def __init__(self, connector_ids: Iterable[int], *, next_local_tx_id: int,
                 recovered: Iterable[TransactionRecord] = (),
                 recovery_reason: StopReason = StopReason.POWER_LOSS) -> None:
        ids = tuple(sorted(set(connector_ids)))
        if not ids or ids[0] < 1:
            raise ValueError(f"connector ids must be >= 1, got {ids}")
        self._conns = {cid: _Conn() for cid in ids}
        self._recovered: dict[int, TransactionRecord] = {}
        for rec in recovered:
            if rec.connector_id not in self._conns or rec.connector_id in self._recovered:
                raise ValueError(f"recovered transaction {rec.local_tx_id} on connector "
                                 f"{rec.connector_id}: unknown or second on that connector")
            self._recovered[rec.connector_id] = rec
        top = max((r.local_tx_id for r in self._recovered.values()), default=0)
        if next_local_tx_id <= top:
            raise ValueError(f"next_local_tx_id {next_local_tx_id} must exceed recovered "
                             f"transaction {top}")
        self._next_id = next_local_tx_id
        self._recovery_reason = recovery_reason
        self._last_now: datetime | None = None

    def active(self, connector_id: int) -> TransactionRecord | None:
        """The transaction running on this connector, or None."""
        return self._conns[connector_id].tx

    def active_transactions(self) -> tuple[TransactionRecord, ...]:
        return tuple(c.tx for c in self._conns.values() if c.tx is not None)

    def step(self, now: datetime, samples: Iterable[ConnectorSample],
             settings: MeterSettings) -> SessionStep:
        """One cycle: rules 2-6. ValueError (nothing changes) for a naive `now`, time
        going backwards, or samples that are not exactly one per connector."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware (UTC), got {now!r}")
        if self._last_now is not None and now < self._last_now:
            raise ValueError(f"now went backwards: {now} < {self._last_now}")
        by_id = {s.connector_id: s for s in samples}
        if sorted(by_id) != sorted(self._conns):
            raise ValueError(f"need one sample per connector {sorted(self._conns)}, "
                             f"got {sorted(by_id)}")
        msgs: list[OutgoingMessage] = []
        notes: list[Note] = []
        conns = {cid: replace(c) for cid, c in self._conns.items()}
        next_id = self._next_id
        for cid, conn in conns.items():
            s = by_id[cid]
            rec = self._recovered.get(cid)
            if rec is not None:
                msgs.append(self._stop(rec, s, now, self._recovery_reason, None, notes))
            next_id = self._step_connector(conn, s, now, settings, next_id, msgs, notes)
        self._conns, self._next_id, self._last_now = conns, next_id, now
        self._recovered = {}
        return SessionStep(messages=tuple(msgs), notes=tuple(notes))

    def _step_connector(self, conn: _Conn, s: ConnectorSample, now: datetime,
                        settings: MeterSettings, next_id: int, msgs: list[OutgoingMessage],
                        notes: list[Note]) -> int:
        if s.id_tag is None or not s.plugged:
            conn.consumed = False
        tx = conn.tx
        if tx is None and s.stop is not None:
            notes.append(Note(connector_id=s.connector_id, local_tx_id=None,
                              text=f"stop ({s.stop.reason.value}) without a transaction: "
                              "nothing to stop"))
        if tx is not None and s.meter is not None:
            tx = replace(tx, last_energy_wh=max(tx.last_energy_wh, energy_wh(s.meter)),
                         last_energy_at=now)
        if tx is not None:
            reason, by = self._stop_reason(s, settings)
            if reason is not None:
                msgs.append(self._stop(tx, s, now, reason, by, notes))
                tx = None
                conn.consumed = s.id_tag is not None and s.plugged
            elif periodic_due(now, tx.started_at, tx.last_sample_at,
                              settings.sample_interval_s):
                tx = replace(tx, last_sample_at=now)
                self._meter_values(s, tx, now, settings.sampled_measurands,
                                   ReadingContext.SAMPLE_PERIODIC, msgs, notes)
        elif (s.plugged and s.id_tag is not None and not conn.consumed
              and s.status not in (OcppStatus.FAULTED, OcppStatus.UNAVAILABLE)):
            if s.meter is None:
                if not conn.waiting_for_meter:
                    notes.append(Note(connector_id=s.connector_id, local_tx_id=None,
                                      text="transaction start waits for a meter reading "
                                      "(meterStart must be real)"))
                conn.waiting_for_meter = True
            else:
                tx = self._start(s, now, next_id, msgs)
                next_id += 1
                conn.waiting_for_meter = False
        if clock_aligned_due(now, conn.last_step_at, settings.clock_aligned_interval_s):
            self._meter_values(s, tx, now, settings.aligned_measurands,
                               ReadingContext.SAMPLE_CLOCK, msgs, notes)
        conn.tx, conn.last_step_at = tx, now
        return next_id

    @staticmethod
    def _stop_reason(s: ConnectorSample, settings: MeterSettings
                     ) -> tuple[StopReason | None, str | None]:
        """Rule 3: why the running transaction ends now (None: it goes on)."""
        if s.stop is not None:
            return s.stop.reason, s.stop.id_tag
        if not s.plugged and settings.stop_on_ev_side_disconnect:
            return StopReason.EV_DISCONNECTED, None
        if s.id_tag is None:
            return StopReason.DE_AUTHORIZED, None
        return None, None

    @staticmethod
    def _start(s: ConnectorSample, now: datetime, local_id: int,
               msgs: list[OutgoingMessage]) -> TransactionRecord:
        assert s.meter is not None and s.id_tag is not None
        wh = energy_wh(s.meter)
        msgs.append(OutgoingMessage(
            action=OutboxAction.START_TRANSACTION, local_tx_id=local_id, energy_wh=wh,
            energy_at=now,
            payload={"connectorId": s.connector_id, "idTag": s.id_tag, "meterStart": wh,
                     "timestamp": iso_utc(now)}))
        return TransactionRecord(local_tx_id=local_id, connector_id=s.connector_id,
                                 id_tag=s.id_tag, meter_start_wh=wh, started_at=now,
                                 last_energy_wh=wh, last_energy_at=now)

    @staticmethod
    def _stop(tx: TransactionRecord, s: ConnectorSample, now: datetime, reason: StopReason,
              by: str | None, notes: list[Note]) -> OutgoingMessage:
        """Rule 6: meterStop from this step's reading, else the last good one."""
        if s.meter is not None:
            stop_wh, read_at = max(tx.last_energy_wh, energy_wh(s.meter)), now
        else:
            stop_wh, read_at = tx.last_energy_wh, tx.last_energy_at
            notes.append(Note(connector_id=tx.connector_id, local_tx_id=tx.local_tx_id,
                              text=f"meter did not answer: meterStop {stop_wh} Wh is the "
                              f"last good reading, taken at {iso_utc(read_at)}"))
        energy = Measurand.ENERGY_ACTIVE_IMPORT_REGISTER.value
        payload: dict[str, Any] = {
            "transactionId": tx.local_tx_id, "meterStop": stop_wh, "timestamp": iso_utc(now),
            "reason": reason.value,
            "transactionData": [
                {"timestamp": iso_utc(tx.started_at), "sampledValue": [
                    {"value": str(tx.meter_start_wh), "context": "Transaction.Begin",
                     "measurand": energy, "unit": "Wh", "location": "Outlet"}]},
                {"timestamp": iso_utc(read_at), "sampledValue": [
                    {"value": str(stop_wh), "context": "Transaction.End",
                     "measurand": energy, "unit": "Wh", "location": "Outlet"}]},
            ],
        }
        if by is not None:
            payload["idTag"] = by
        return OutgoingMessage(action=OutboxAction.STOP_TRANSACTION, payload=payload,
                               local_tx_id=tx.local_tx_id, energy_wh=stop_wh,
                               energy_at=read_at)

    @staticmethod
    def _meter_values(s: ConnectorSample, tx: TransactionRecord | None, now: datetime,
                      measurands: tuple[Measurand, ...], context: ReadingContext,
                      msgs: list[OutgoingMessage], notes: list[Note]) -> None:
        local_id = None if tx is None else tx.local_tx_id
        values = sampled_values(s.meter, s.offered_a, measurands, context)
        if s.meter is None:
            notes.append(Note(connector_id=s.connector_id, local_tx_id=local_id,
                              text=f"meter did not answer: {context.value} meter values "
                              + ("without meter readings" if values else "not sent")))
        if not values:
            return
        payload: dict[str, Any] = {"connectorId": s.connector_id}
        if local_id is not None:
            payload["transactionId"] = local_id
        payload["meterValue"] = [{"timestamp": iso_utc(now), "sampledValue": values}]
        msgs.append(OutgoingMessage(
            action=OutboxAction.METER_VALUES, payload=payload, local_tx_id=local_id,
            energy_wh=None if s.meter is None else energy_wh(s.meter),
            energy_at=None if s.meter is None else now))


__all__ = [
    "ChargerSessions", "ConnectorSample", "Note", "Observed", "OutboxAction", "OutgoingMessage",
    "SessionStep", "StopReason", "StopRequest", "TransactionRecord",
]
