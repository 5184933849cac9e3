"""The charge point's Core and Remote Trigger commands from the CSMS (OCPP 1.6 chapter
5): Reset, ChangeAvailability, UnlockConnector, Get/ChangeConfiguration, TriggerMessage,
DataTransfer; and the ports they work through. Mixed into
agent.ocpp.chargepoint.ChargePoint, whose rules 4 and 6 they follow: handlers translate
and hand the work to the injected `ChargerPort` or `ConfigurationStore`; follow-ups and
the end of the session come in `@after`, through the session's own tasks.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ocpp.exceptions import OccurenceConstraintViolationError, PropertyConstraintViolationError
from ocpp.routing import after, on
from ocpp.v16 import call_result
from ocpp.v16.datatypes import KeyValue
from ocpp.v16.enums import (
    Action,
    AvailabilityType,
    DataTransferStatus,
    MessageTrigger,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
)

from agent.ocpp.availability import AvailabilityChange
from agent.ocpp.configkeys import ChangeStatus, ConfigurationStore, Effect
from agent.ocpp.reports import VENDOR
from agent.ocpp.transactions import StopReason

if TYPE_CHECKING:
    import structlog

    from agent.ocpp.security import SecurityEvents
    from agent.ocpp.sessions import OcppSessions

# Team choice: a stop needs one agent step (0.25 s) and one CSMS answer (seconds over
# 4G); what is not answered by then goes out after the restart (the outbox is durable).
RESET_FLUSH_S = 10.0


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

    @property
    def state_dir(self) -> Path:
        """The charger's state folder (certificates, security log)."""


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


class CoreHandlers:
    """The commands; expects the ChargePoint's port, settings, sessions, log, task group
    and `_finish`."""

    port: ChargerPort
    settings: ConfigurationStore
    sessions: OcppSessions | None
    log: structlog.typing.FilteringBoundLogger
    _tg: asyncio.TaskGroup | None
    _work: list[asyncio.Task[Any]]
    _triggers: asyncio.Queue[tuple[MessageTrigger, int | None]]
    _end_after_answer: SessionEnd | None
    security: SecurityEvents

    if TYPE_CHECKING:  # the ChargePoint's and SecurityHandlers'
        def _finish(self, end: SessionEnd) -> None: ...

        def change_security_profile(self, value: str) -> call_result.ChangeConfiguration: ...

    @_on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        stopped = [] if self.sessions is None else self.sessions.stop_all(
            StopReason.HARD_RESET if type == ResetType.hard else StopReason.SOFT_RESET)
        self.log.info("reset requested", type=type, transactions_stopped_on=stopped)
        self.security.record("ResetOrReboot", f"{type} reset requested by the CSMS")
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
        if key.strip().lower() == "securityprofile":
            return self.change_security_profile(value)
        outcome = self.settings.change(key, value)
        if outcome.key == "AuthorizationKey":  # the why may quote the value: not logged
            self.security.record("ReconfigurationOfSecurityParameters",
                                 f"AuthorizationKey change {outcome.status.value}")
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
        self._queue_trigger(requested_message, connector_id)

    def _queue_trigger(self, requested_message: str, connector_id: int | None) -> None:
        """Send an accepted trigger's message after the answer (TriggerMessage and
        ExtendedTriggerMessage alike)."""
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
