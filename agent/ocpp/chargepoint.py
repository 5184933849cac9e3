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
    out, through this session's own tasks. The Core and Remote Trigger commands live in
    agent.ocpp.corehandlers, the transaction side in agent.ocpp.handlers, the security
    whitepaper's in agent.ocpp.securityhandlers.
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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import (
    OCPPError,
)
from ocpp.messages import Call, CallError, unpack
from ocpp.v16 import ChargePoint as _LibChargePoint
from ocpp.v16 import call
from ocpp.v16.enums import (
    DiagnosticsStatus,
    FirmwareStatus,
    MessageTrigger,
    RegistrationStatus,
)

from agent.ocpp.callerrors import payload_error
from agent.ocpp.certstore import CertStore
from agent.ocpp.configkeys import (
    ChangeStatus,
    ConfigurationStore,
)
from agent.ocpp.corehandlers import ChargerPort, CoreHandlers, SessionEnd
from agent.ocpp.frames import Refusal, screen, unknown_action_error
from agent.ocpp.handlers import TransactionHandlers
from agent.ocpp.reports import VENDOR, BootIdentity, StatusBoard, StatusReport
from agent.ocpp.security import SecurityEvents
from agent.ocpp.securityhandlers import SecurityHandlers

if TYPE_CHECKING:
    from agent.ocpp.sessions import OcppSessions

BOOT_RETRY_S = 60.0  # team choice: when a Pending/Rejected answer gives interval 0
log = structlog.get_logger("agent.ocpp")


def iso(at: datetime) -> str:
    """OCPP's dateTime: UTC, milliseconds, 'Z'."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ChargePoint(CoreHandlers, TransactionHandlers, SecurityHandlers,
                  _LibChargePoint):  # type: ignore[misc]
    """One websocket's charge point. `run` until the stop event or a Reset."""

    def __init__(self, charge_point_id: str, connection: Any, *, identity: BootIdentity,
                 port: ChargerPort, settings: ConfigurationStore, board: StatusBoard,
                 on_registration: Callable[[RegistrationStatus], None] = lambda _: None,
                 response_timeout_s: float = 30.0, sessions: OcppSessions | None = None,
                 security: SecurityEvents | None = None, certs: CertStore | None = None,
                 check_profile: Callable[[int], str | None] = lambda _: "not supported"
                 ) -> None:
        super().__init__(charge_point_id, connection, response_timeout=response_timeout_s)
        self.identity, self.port, self.settings, self.board = identity, port, settings, board
        self.sessions = sessions
        self.security = security or SecurityEvents(None, charge_point_id=charge_point_id)
        self.certs, self.check_profile = certs, check_profile
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
            elif message == MessageTrigger.sign_charge_point_certificate:
                await self._sign_certificate()
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
        self.security.record("InvalidMessages", f"{refusal.error.code}: {refusal.why}")
        e = refusal.error
        if answer:
            assert refusal.reply_to is not None
            await self._send(CallError(refusal.reply_to, e.code, e.description,
                                       e.details).to_json())
        elif refusal.fails is not None:
            self._response_queue.put_nowait(CallError(refusal.fails, e.code, e.description,
                                                      e.details))


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

