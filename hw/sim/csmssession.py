"""The back office's side of one charge point's connection (hw.sim.csms rules 3-5): the
ocpp library's `ChargePoint` used from the server side, and what it records."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

from ocpp.messages import Call, MessageType
from ocpp.routing import on
from ocpp.v16 import ChargePoint as _LibChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, DataTransferStatus, GenericStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection

_F = TypeVar("_F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], on(action))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Received:
    """One CALL from a charge point, as it arrived."""

    charge_point_id: str
    action: str
    payload: Any
    at_s: float  # the event loop's (monotonic) time
    unique_id: str = ""  # the OCPP message id (a resend keeps it)


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """The answer to `call_raw`: a CallResult payload, or a CallError's code."""

    payload: Any = None
    error_code: str | None = None
    error_description: str = ""


class Csms(Protocol):
    """What a session needs of its back office (hw.sim.csms.Csms implements it): the
    port belongs to this side, so the two modules import one way."""

    response_timeout_s: float
    heartbeat_interval_s: int
    retry_interval_s: int
    transactions: int

    def next_boot_reply(self, charge_point_id: str) -> RegistrationStatus: ...

    def tag_status(self, id_tag: str) -> str: ...

    async def record(self, received: Received) -> None: ...


class CsmsSession(_LibChargePoint):  # type: ignore[misc]  # ocpp ships no type hints
    """The CSMS's side of one charge point's connection."""

    def __init__(self, charge_point_id: str, ws: ServerConnection, csms: Csms) -> None:
        super().__init__(charge_point_id, ws, response_timeout=csms.response_timeout_s)
        self.csms = csms

    async def route_message(self, raw_msg: str) -> None:
        try:
            msg = json.loads(raw_msg)
        except ValueError:
            msg = None
        if isinstance(msg, list) and len(msg) == 4 and msg[0] == MessageType.Call:
            await self.csms.record(Received(self.id, str(msg[2]), msg[3],
                                            asyncio.get_running_loop().time(), str(msg[1])))
        await super().route_message(raw_msg)

    async def call_raw(self, action: str, payload: Any) -> RawAnswer:
        unique_id = str(uuid.uuid4())
        async with self._call_lock:
            await self._send(Call(unique_id, action, payload).to_json())
            answer = await self._get_specific_response(unique_id, self._response_timeout)
        if answer.message_type_id == MessageType.CallError:
            return RawAnswer(error_code=answer.error_code,
                             error_description=answer.error_description)
        return RawAnswer(payload=answer.payload)

    async def send_frame(self, text: str, answer_to: str | None) -> RawAnswer | None:
        async with self._call_lock:
            await self._send(text)
            if answer_to is None:
                return None
            answer = await self._get_specific_response(answer_to, self._response_timeout)
        if answer.message_type_id == MessageType.CallError:
            return RawAnswer(error_code=answer.error_code,
                             error_description=answer.error_description)
        return RawAnswer(payload=answer.payload)

    @_on(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        status = self.csms.next_boot_reply(self.id)
        interval = self.csms.heartbeat_interval_s if status == RegistrationStatus.accepted \
            else self.csms.retry_interval_s
        return call_result.BootNotification(current_time=_now(), interval=interval,
                                            status=status)

    @_on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @_on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @_on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": self.csms.tag_status(id_tag)})

    @_on(Action.start_transaction)
    def on_start_transaction(self, id_tag: str, **_: Any) -> call_result.StartTransaction:
        self.csms.transactions += 1
        return call_result.StartTransaction(transaction_id=self.csms.transactions,
                                            id_tag_info={"status": self.csms.tag_status(id_tag)})

    @_on(Action.stop_transaction)
    def on_stop_transaction(self, id_tag: str | None = None, **_: Any
                            ) -> call_result.StopTransaction:
        info = None if id_tag is None else {"status": self.csms.tag_status(id_tag)}
        return call_result.StopTransaction(id_tag_info=info)

    @_on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @_on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, **_: Any
                                           ) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @_on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any
                                        ) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @_on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @_on(Action.security_event_notification)
    def on_security_event_notification(self, **_: Any
                                       ) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @_on(Action.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> call_result.SignCertificate:
        return call_result.SignCertificate(status=GenericStatus.accepted)
