"""The OCPP 1.6J charge point over one websocket: boot, heartbeat, status, CSMS commands.

A `ChargePoint` lives as long as its websocket (agent.ocpp.connection makes one per
connection); what outlives it (statuses, configuration keys, the charger) is handed in.
Connector 0 is the whole charger, 1 and 2 the sockets.

Rules:
 1. Registration (OCPP 1.6 section 4.2): BootNotification first, repeated while Pending or
    Rejected after the interval the CSMS gives (`BOOT_RETRY_S` if it gives 0). Before
    Accepted nothing else is sent but what a TriggerMessage asks for while Pending; while
    Rejected, requests from the CSMS get no answer at all.
 2. Accepted: a non-zero interval becomes HeartbeatInterval; the current status of every
    connector (0 too) is sent, then every change in order, stamped with its time.
 3. A Heartbeat goes out after HeartbeatInterval s without any request sent (section 9.1:
    "interval of inactivity"); a new HeartbeatInterval re-arms it at once.
 4. Handlers only translate (style.md section 4): they check what the payload means for
    this charger, hand the work to the injected `ChargerPort` or `ConfigurationStore`, and
    answer. A connector that does not exist is Rejected, or PropertyConstraintViolation
    where the answer has no Rejected (UnlockConnector). Follow-ups (TriggerMessage) and the
    end of the session (Reset, new AuthorizationKey) come in `@after`, once the answer is
    out, through this session's own tasks.
 5. A CALL whose payload breaks the 1.6 JSON schema gets the OCPP-J 1.6 CallError (section
    4.2.3): missing field ProtocolError, wrong type or too long TypeConstraintViolation,
    unknown field FormationViolation, a value outside its enumeration or range
    PropertyConstraintViolation; nothing changes. (ocpp 2.1 itself answers the 2.0 name
    FormatViolation, which 1.6 does not have, so this class checks first.)
 6. Reset (soft or hard) is Accepted; running transactions are stopped (SoftReset /
    HardReset, queued in the outbox) and their StopTransaction sent BEFORE the restart
    (section 5.14; for a hard reset the spec allows after, before keeps the billing data
    in this session), waiting at most RESET_FLUSH_S; then the session ends and `run`
    returns its type: the shell resets what the port says, reconnects and boots again.
 7. Transactions, authorisation and smart charging (agent.ocpp.handlers): with
    `sessions`, a registered session also drains the durable outbox and asks the CSMS
    about idTags; TriggerMessage MeterValues is answered from the last readings.
 8. Every frame is screened first (agent.ocpp.frames: depth, numbers, frame shape); a
    refused one is logged ("CSMS frame refused") and answered with its CallError when
    its CALL's id can be read. An action without a handler is NotImplemented or
    NotSupported as OCPP-J 1.6 section 4.2.3 says (frames rule 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import structlog
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import (
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
)
from ocpp.messages import Call, CallError, unpack
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as _LibChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.datatypes import KeyValue
from ocpp.v16.enums import (
    Action,
    AvailabilityType,
    DataTransferStatus,
    DiagnosticsStatus,
    FirmwareStatus,
    MessageTrigger,
    RegistrationStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
)

from agent.ocpp.callerrors import payload_error
from agent.ocpp.configkeys import (
    AvailabilityChange,
    ChangeStatus,
    ConfigurationStore,
    Effect,
)
from agent.ocpp.frames import Refusal, screen, unknown_action_error
from agent.ocpp.handlers import TransactionHandlers
from agent.ocpp.transactions import StopReason

if TYPE_CHECKING:  # connection.py imports this module; these outlive a connection
    from agent.ocpp.connection import BootIdentity, StatusBoard, StatusReport
    from agent.ocpp.sessions import OcppSessions

VENDOR = "Ratio"  # BootNotification chargePointVendor, DataTransfer vendorId
MODEL = "io7"
# Team choice: a stop needs one agent step (0.25 s) and one CSMS answer (seconds over
# 4G); what is not answered by then goes out after the restart (the outbox is durable).
RESET_FLUSH_S = 10.0
BOOT_RETRY_S = 60.0  # team choice: when a Pending/Rejected answer gives interval 0
log = structlog.get_logger("agent.ocpp")


def iso(at: datetime) -> str:
    """OCPP's dateTime: UTC, milliseconds, 'Z'."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UnlockResult(enum.Enum):
    """UnlockConnector.conf status (values = OCPP 1.6 UnlockStatus)."""

    UNLOCKED = "Unlocked"
    UNLOCK_FAILED = "UnlockFailed"
    NOT_SUPPORTED = "NotSupported"


class ChargerPort(Protocol):
    """The charger as the charge point sees it; the agent implements it."""

    @property
    def connector_ids(self) -> tuple[int, ...]:
        """The sockets (1, 2)."""

    def change_availability(self, connector_id: int, operative: bool) -> AvailabilityChange:
        """ChangeAvailability for a connector (0 = all), persisted; Scheduled while a
        session runs there."""

    def unlock_connector(self, connector_id: int) -> UnlockResult:
        """Release the cable lock of an existing socket."""

    def reset(self, hard: bool) -> None:
        """The charger's part of a Reset, after the session ended (hard: clear latched
        faults)."""


class SessionEnd(enum.Enum):
    """Why `ChargePoint.run` returned before its stop event."""

    SOFT_RESET = "Soft"
    HARD_RESET = "Hard"
    RECONNECT = "reconnect"  # a new AuthorizationKey


_F = TypeVar("_F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], on(action))


def _after(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], after(action))


class ChargePoint(TransactionHandlers, _LibChargePoint):  # type: ignore[misc]  # no hints
    """One websocket's charge point. `run` until the stop event or a Reset."""

    def __init__(self, charge_point_id: str, connection: Any, *, identity: BootIdentity,
                 port: ChargerPort, settings: ConfigurationStore, board: StatusBoard,
                 on_registration: Callable[[RegistrationStatus], None] = lambda _: None,
                 response_timeout_s: float = 30.0, sessions: OcppSessions | None = None
                 ) -> None:
        super().__init__(charge_point_id, connection, response_timeout=response_timeout_s)
        self.identity, self.port, self.settings, self.board = identity, port, settings, board
        self.sessions = sessions
        self.on_registration = on_registration
        self.log = log.bind(charger_id=charge_point_id)
        self.registration: RegistrationStatus | None = None
        self._triggers: asyncio.Queue[tuple[MessageTrigger, int | None]] = asyncio.Queue(16)
        self._boot_now = asyncio.Event()
        self._rearm = asyncio.Event()
        self._ended = asyncio.Event()
        self._end: SessionEnd | None = None
        self._end_after_answer: SessionEnd | None = None
        self._last_sent = asyncio.get_running_loop().time()
        self._tg: asyncio.TaskGroup | None = None
        self._work: list[asyncio.Task[Any]] = []

    # --- the session --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> SessionEnd | None:
        """Read, register, then heartbeat and report statuses until `stop` is set (None)
        or the CSMS ends the session (rule 6). Raises the ExceptionGroup of the reader
        (websockets' ConnectionClosed) when the connection drops."""
        unsubscribe = self.settings.subscribe(self._setting_changed)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._work = [tg.create_task(self.start(), name="ocpp reader"),
                              tg.create_task(self._send_triggered(), name="ocpp triggered"),
                              tg.create_task(self._register(), name="ocpp registration")]
                waits = [tg.create_task(stop.wait()), tg.create_task(self._ended.wait())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                await _cancel_all([*self._work, *waits])
        finally:
            unsubscribe()
            self.board.go_offline()
        return self._end

    async def _register(self) -> None:
        while True:
            result = await self._boot()
            if result is not None and result.status == RegistrationStatus.accepted:
                break
            wait_s = float(result.interval) if result is not None and result.interval > 0 \
                else BOOT_RETRY_S
            self._boot_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):  # not wait_for: 3.11's can swallow a cancel
                    await self._boot_now.wait()
        assert self._tg is not None  # run's task group: one level, see _cancel_all
        self._work.append(self._tg.create_task(self._send_statuses(), name="ocpp statuses"))
        self._work.append(self._tg.create_task(self._send_heartbeats(), name="ocpp heartbeats"))
        if self.sessions is not None:
            self._work.append(self._tg.create_task(self._send_outbox(), name="ocpp outbox"))
            self._work.append(self._tg.create_task(self._ask_csms(), name="ocpp authorize"))

    async def _boot(self) -> Any:
        i = self.identity
        result = await self.request(call.BootNotification(
            charge_point_vendor=i.vendor, charge_point_model=i.model,
            charge_point_serial_number=i.serial_number, firmware_version=i.firmware_version))
        if result is None:
            return None
        status = RegistrationStatus(result.status)
        skew_s = _clock_ahead_s(result.current_time)
        self.log.info("boot answered", status=status.value, interval_s=result.interval,
                      csms_clock_ahead_s=skew_s)
        self.registration = status
        if status == RegistrationStatus.accepted and result.interval > 0:
            outcome = self.settings.change("HeartbeatInterval", str(result.interval))
            if outcome.status is not ChangeStatus.ACCEPTED:
                self.log.warning("heartbeat interval kept", why=outcome.why)
        self.on_registration(status)
        return result

    async def _send_statuses(self) -> None:
        self.board.go_live()
        while True:
            await self._send_status(await self.board.next())

    async def _send_status(self, r: StatusReport) -> None:
        await self.request(call.StatusNotification(
            connector_id=r.connector_id, error_code=r.error_code.value, status=r.status.value,
            timestamp=iso(r.at), info=r.info or None,
            vendor_id=VENDOR if r.vendor_error_code else None,
            vendor_error_code=r.vendor_error_code or None))
        self.log.info("status sent", connector_id=r.connector_id, status=r.status.value,
                      error_code=r.error_code.value, vendor_error_code=r.vendor_error_code)

    async def _send_heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._rearm.clear()
            interval_s = self.settings.integer("HeartbeatInterval")
            wait_s = None if interval_s <= 0 else self._last_sent + interval_s - loop.time()
            if wait_s is not None and wait_s <= 0:
                await self.request(call.Heartbeat())
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):  # not wait_for (see _register)
                    await self._rearm.wait()

    async def _send_triggered(self) -> None:
        while True:
            message, connector_id = await self._triggers.get()
            if message == MessageTrigger.boot_notification:
                if self.registration == RegistrationStatus.accepted:
                    await self._boot()
                else:
                    self._boot_now.set()
            elif message == MessageTrigger.heartbeat:
                await self.request(call.Heartbeat())
            elif message == MessageTrigger.status_notification:
                for report in self.board.current(connector_id):
                    await self._send_status(report)
            elif message == MessageTrigger.diagnostics_status_notification:
                await self.request(call.DiagnosticsStatusNotification(
                    status=DiagnosticsStatus.idle))
            elif message == MessageTrigger.firmware_status_notification:
                await self.request(call.FirmwareStatusNotification(status=FirmwareStatus.idle))
            elif message == MessageTrigger.meter_values and self.sessions is not None:
                for payload in self.sessions.meter_values_now(connector_id):
                    await self.request(call.MeterValues(**camel_to_snake_case(payload)))

    async def request(self, payload: Any) -> Any:
        """Send a CALL; the CallResult, or None after a CallError or no answer in time
        (logged: the caller goes on, the next boot/heartbeat/status tries again)."""
        self._last_sent = asyncio.get_running_loop().time()
        action = type(payload).__name__
        try:
            return await self.call(payload, suppress=False)
        except OCPPError as err:
            self.log.warning("CSMS answered with a CallError", action=action,
                             code=err.code, description=err.description)
        except TimeoutError:
            self.log.warning("CSMS did not answer", action=action,
                             timeout_s=self._response_timeout)
        return None

    def _setting_changed(self, key: str, value: str) -> None:
        if key == "HeartbeatInterval":
            self._rearm.set()

    def _finish(self, end: SessionEnd) -> None:
        self._end = end
        self._ended.set()

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Rules 1, 5 and 8, then the library's routing."""
        refusal = screen(raw_msg)
        if refusal is not None:
            await self._refuse(refusal)
            return
        msg = unpack(raw_msg)  # screened: cannot raise
        if isinstance(msg, Call):
            if self.registration == RegistrationStatus.rejected:
                self.log.warning("CSMS request ignored while rejected", action=msg.action)
                return
            error = unknown_action_error(msg.action) \
                if "_on_action" not in self.route_map.get(msg.action, {}) \
                else payload_error(msg.action, msg.payload)
            if error is not None:
                self.log.warning("CSMS request refused", action=msg.action[:50],
                                 code=error.code, why=error.details.get("cause"))
                await self._send(msg.create_call_error(error).to_json())
                return
        await super().route_message(raw_msg)

    async def _refuse(self, refusal: Refusal) -> None:
        """Rule 8: log, then answer the CALL, fail our own CALL, or drop."""
        answer = refusal.reply_to is not None \
            and self.registration != RegistrationStatus.rejected
        self.log.warning("CSMS frame refused", code=refusal.error.code, why=refusal.why,
                         unique_id=refusal.reply_to or refusal.fails, answered=answer)
        e = refusal.error
        if answer:
            assert refusal.reply_to is not None
            await self._send(CallError(refusal.reply_to, e.code, e.description,
                                       e.details).to_json())
        elif refusal.fails is not None:
            self._response_queue.put_nowait(CallError(refusal.fails, e.code, e.description,
                                                      e.details))

    # --- commands from the CSMS (rule 4) --------------------------------------------------
    @_on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        stopped = [] if self.sessions is None else self.sessions.stop_all(
            StopReason.HARD_RESET if type == ResetType.hard else StopReason.SOFT_RESET)
        self.log.info("reset requested", type=type, transactions_stopped_on=stopped)
        return call_result.Reset(status=ResetStatus.accepted)

    @_after(Action.reset)
    def after_reset(self, type: str, **_: Any) -> None:
        end = SessionEnd.HARD_RESET if type == ResetType.hard else SessionEnd.SOFT_RESET
        assert self._tg is not None  # run's task group
        self._work.append(self._tg.create_task(self._reset_when_stopped(end),
                                               name="ocpp reset"))

    async def _reset_when_stopped(self, end: SessionEnd) -> None:
        """Rule 6: end the session once the stopped transactions' StopTransaction went
        out (the next step queues them, the outbox sends them), at most RESET_FLUSH_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESET_FLUSH_S
        s = self.sessions
        while s is not None and (s.busy() or s.store.pending_count()) \
                and loop.time() < deadline:  # noqa: ASYNC110  # step and outbox: no common event
            await asyncio.sleep(0.05)
        if s is not None and (s.busy() or s.store.pending_count()):
            self.log.warning("reset: transaction messages left for after the restart",
                             pending=s.store.pending_count(), waited_s=RESET_FLUSH_S)
        self._finish(end)

    @_on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any
                               ) -> call_result.ChangeAvailability:
        if connector_id != 0 and connector_id not in self.port.connector_ids:
            outcome = AvailabilityChange.REJECTED
        else:
            outcome = self.port.change_availability(
                connector_id, operative=type == AvailabilityType.operative)
        self.log.info("availability change", connector_id=connector_id, type=type,
                      outcome=outcome.value)
        return call_result.ChangeAvailability(status=outcome.value)

    @_on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        if connector_id not in self.port.connector_ids:
            raise PropertyConstraintViolationError(details={
                "cause": f"connector {connector_id} does not exist; this charger has "
                         f"{list(self.port.connector_ids)}"})
        outcome = self.port.unlock_connector(connector_id)
        self.log.info("unlock connector", connector_id=connector_id, outcome=outcome.value)
        return call_result.UnlockConnector(status=outcome.value)

    @_on(Action.get_configuration)
    def on_get_configuration(self, key: Sequence[str] | None = None, **_: Any
                             ) -> call_result.GetConfiguration:
        keys = list(key or [])
        most = self.settings.integer("GetConfigurationMaxKeys")
        if len(keys) > most:
            raise OccurenceConstraintViolationError(details={
                "cause": f"{len(keys)} keys asked, GetConfigurationMaxKeys is {most}"})
        known, unknown = self.settings.get(keys)
        return call_result.GetConfiguration(
            configuration_key=[KeyValue(key=k.key, readonly=k.readonly, value=k.value)
                               for k in known] or None,
            unknown_key=unknown or None)

    @_on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any
                                ) -> call_result.ChangeConfiguration:
        outcome = self.settings.change(key, value)
        shown = "(write-only)" if outcome.key == "AuthorizationKey" else value
        self.log.info("configuration change", key=outcome.key, value=shown,
                      status=outcome.status.value, why=outcome.why)
        if outcome.status is ChangeStatus.ACCEPTED and outcome.effect is Effect.RECONNECT:
            self._end_after_answer = SessionEnd.RECONNECT
        return call_result.ChangeConfiguration(status=outcome.status.value)

    @_after(Action.change_configuration)
    def after_change_configuration(self, **_: Any) -> None:
        end, self._end_after_answer = self._end_after_answer, None
        if end is not None:
            self._finish(end)

    def _trigger_verdict(self, message: str, connector_id: int | None) -> TriggerMessageStatus:
        if connector_id is not None and connector_id not in (0, *self.port.connector_ids):
            return TriggerMessageStatus.rejected
        if message in (MessageTrigger.boot_notification, MessageTrigger.heartbeat,
                       MessageTrigger.status_notification,
                       MessageTrigger.diagnostics_status_notification,
                       MessageTrigger.firmware_status_notification):
            return TriggerMessageStatus.accepted
        if message == MessageTrigger.meter_values and self.sessions is not None:
            return TriggerMessageStatus.accepted
        return TriggerMessageStatus.not_implemented

    @_on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None,
                           **_: Any) -> call_result.TriggerMessage:
        verdict = self._trigger_verdict(requested_message, connector_id)
        self.log.info("trigger message", message=requested_message, connector_id=connector_id,
                      status=verdict.value)
        return call_result.TriggerMessage(status=verdict)

    @_after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None,
                              **_: Any) -> None:
        if self._trigger_verdict(requested_message, connector_id) is not \
                TriggerMessageStatus.accepted:
            return
        try:
            self._triggers.put_nowait((MessageTrigger(requested_message), connector_id))
        except asyncio.QueueFull:
            self.log.warning("trigger dropped: too many waiting", message=requested_message)

    @_on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        # No vendor-specific messages yet: ours has no message ids, others are unknown.
        status = DataTransferStatus.unknown_message_id if vendor_id == VENDOR \
            else DataTransferStatus.unknown_vendor_id
        return call_result.DataTransfer(status=status)


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until they ended, cancelling again while some run: the
    ocpp library awaits answers with Python 3.11's asyncio.wait_for, which swallows a
    cancel that arrives together with the answer (the task would then run on)."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)


def _clock_ahead_s(current_time: str) -> float | None:
    """How far the CSMS's clock is ahead of ours (logged; None if unreadable). Naive
    times are taken as UTC."""
    try:
        at = datetime.fromisoformat(current_time)
    except (TypeError, ValueError):
        return None
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return round((at - datetime.now(UTC)).total_seconds(), 3)

