"""The charge point's transaction, authorisation and smart-charging side: the CSMS's
commands for them and the two tasks that talk to the CSMS for them (the outbox sender
and the Authorize asker). Mixed into agent.ocpp.chargepoint.ChargePoint.

Rules:
 1. Handlers translate only (style.md section 4): they parse what the payload means and
    hand it to the injected `OcppSessions`. A connector that does not exist is Rejected;
    a profile that does not validate (agent.ocpp.schedule.ProfileError) gets a
    PropertyConstraintViolation CallError and changes nothing.
 2. The outbox sender (a task of the registered session): the oldest queued message goes
    out with its own OCPP unique id (resends reuse it); its answer is handed back before
    the next one goes. A CallError or no answer counts an attempt; after
    TransactionMessageAttempts the message is dropped, before that it is retried after
    TransactionMessageRetryInterval x attempts s (OCPP 1.6 section 4.10).
 3. The asker sends Authorize.req for cards and remote starts the CSMS decides on; no
    answer is decided again as offline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from ocpp.charge_point import camel_to_snake_case, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError, PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    ChargingProfileStatus,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    GetCompositeScheduleStatus,
    RemoteStartStopStatus,
)

from agent.errors import PeerError
from agent.ocpp.auth import IdTagInfo
from agent.ocpp.authlists import AuthorizationData, UpdateType
from agent.ocpp.profiles import ProfileError, Purpose, RateUnit, parse_profile
from agent.ocpp.schedule import format_time
from agent.ocpp.store import OutboxError

if TYPE_CHECKING:
    import structlog

    from agent.ocpp.configkeys import ConfigurationStore
    from agent.ocpp.sessions import OcppSessions

_F = TypeVar("_F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], on(action))


def _now() -> datetime:
    return datetime.now(UTC)


def _refuse(err: ProfileError) -> PropertyConstraintViolationError:
    return PropertyConstraintViolationError(details={"cause": str(err)})


def _info(d: dict[str, Any]) -> IdTagInfo:
    """A snake_case idTagInfo (as the library hands it over) parsed; PeerError if bad."""
    return IdTagInfo.from_json({"status": d.get("status"), "expiryDate": d.get("expiry_date"),
                                "parentIdTag": d.get("parent_id_tag")})


class TransactionHandlers:
    """Rules 1-3; expects the ChargePoint's `sessions`, `settings`, `log`, `call`."""

    sessions: OcppSessions | None
    settings: ConfigurationStore
    log: structlog.typing.FilteringBoundLogger

    if TYPE_CHECKING:  # the ocpp library's ChargePoint.call, for the type checker only
        async def call(self, payload: Any, suppress: bool = True,
                       unique_id: str | None = None,
                       skip_schema_validation: bool = False) -> Any: ...

    def _sessions(self) -> OcppSessions:
        if self.sessions is None:
            raise PropertyConstraintViolationError(details={
                "cause": "this charge point runs without transactions"})
        return self.sessions

    def _connector_known(self, connector_id: int) -> bool:
        return self.sessions is not None and connector_id in self.sessions.ids

    # --- the tasks ------------------------------------------------------------------------
    async def _send_outbox(self) -> None:
        """Rule 2."""
        s = self._sessions()
        while True:
            try:
                m = s.store.peek()
            except OutboxError as err:
                self.log.error("outbox unreadable", why=str(err))
                m = None
            if m is None:
                s.outbox_ready.clear()
                with contextlib.suppress(TimeoutError):  # a poll, in case a wake was missed
                    async with asyncio.timeout(5.0):  # not wait_for: 3.11's can swallow a cancel
                        await s.outbox_ready.wait()
                continue
            try:
                payload = getattr(call, m.action.value)(**camel_to_snake_case(m.payload))
                result = await self.call(payload, suppress=False, unique_id=m.unique_id)
                s.delivered(m, snake_to_camel_case(serialize_as_dict(result)), _now())
                continue
            except (TypeError, ValidationError) as err:  # ours is broken: never goes out
                self.log.error("outbox message cannot be sent", action=m.action.value,
                               seq=m.seq, why=str(err))
                s.store.drop(m.seq)
                continue
            except (OCPPError, TimeoutError, PeerError) as err:
                why = str(err) or type(err).__name__
            attempts = s.store.record_attempt(m.seq)
            most = self.settings.integer("TransactionMessageAttempts")
            if attempts >= most:
                self.log.error("transaction message dropped", action=m.action.value,
                               seq=m.seq, attempts=attempts, why=why,
                               removed=s.store.drop(m.seq))
                continue
            wait_s = self.settings.integer("TransactionMessageRetryInterval") * attempts
            self.log.warning("transaction message not accepted, retrying",
                             action=m.action.value, seq=m.seq, attempts=attempts, why=why,
                             retry_in_s=wait_s)
            await asyncio.sleep(wait_s)

    async def _ask_csms(self) -> None:
        """Rule 3."""
        s = self._sessions()
        while True:
            q = s.take_question()
            if q is None:
                await s.question_ready.wait()
                continue
            info = None
            try:
                result = await self.call(call.Authorize(id_tag=q.id_tag), suppress=False)
                info = _info(result.id_tag_info)
            except (OCPPError, TimeoutError, PeerError) as err:
                self.log.warning("Authorize not answered", id_tag=q.id_tag,
                                 why=str(err) or type(err).__name__)
            s.answer(q, info, _now())

    # --- CSMS -> charge point ------------------------------------------------------------
    @_on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, connector_id: int | None = None,
                                    charging_profile: dict[str, Any] | None = None,
                                    **_: Any) -> call_result.RemoteStartTransaction:
        s = self._sessions()
        profile = None
        if charging_profile is not None:
            try:
                profile = parse_profile(charging_profile)
            except ProfileError as err:
                raise _refuse(err) from None
        ok = (profile is None or profile.purpose is Purpose.TX) and s.remote_start(
            id_tag, connector_id, profile, _now())
        self.log.info("remote start", id_tag=id_tag, connector_id=connector_id, accepted=ok)
        return call_result.RemoteStartTransaction(
            status=RemoteStartStopStatus.accepted if ok else RemoteStartStopStatus.rejected)

    @_on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int, **_: Any
                                   ) -> call_result.RemoteStopTransaction:
        ok = self._sessions().remote_stop(transaction_id)
        self.log.info("remote stop", transaction_id=transaction_id, accepted=ok)
        return call_result.RemoteStopTransaction(
            status=RemoteStartStopStatus.accepted if ok else RemoteStartStopStatus.rejected)

    @_on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        try:
            entries = [AuthorizationData(
                id_tag=e["id_tag"],
                id_tag_info=None if e.get("id_tag_info") is None else _info(e["id_tag_info"]))
                for e in local_authorization_list or []]
        except (PeerError, ValueError) as err:
            raise PropertyConstraintViolationError(details={"cause": str(err)}) from None
        status = self._sessions().send_local_list(list_version, UpdateType(update_type),
                                                  entries)
        self.log.info("local list", version=list_version, update_type=update_type,
                      entries=len(entries), status=status.value)
        return call_result.SendLocalList(status=status.value)

    @_on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self._sessions().local_list_version())

    @_on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        ok = self._sessions().clear_cache()
        self.log.info("authorisation cache cleared", accepted=ok)
        return call_result.ClearCache(
            status=ClearCacheStatus.accepted if ok else ClearCacheStatus.rejected)

    @_on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any],
                                **_: Any) -> call_result.SetChargingProfile:
        try:
            profile = parse_profile(cs_charging_profiles)
        except ProfileError as err:
            raise _refuse(err) from None
        result = self._sessions().set_profile(connector_id, profile)
        return call_result.SetChargingProfile(
            status=ChargingProfileStatus.accepted if result.accepted
            else ChargingProfileStatus.rejected)

    @_on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, id: int | None = None,
                                  connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None,
                                  stack_level: int | None = None, **_: Any
                                  ) -> call_result.ClearChargingProfile:
        ok = self._sessions().clear_profiles(
            profile_id=id, connector_id=connector_id, stack_level=stack_level,
            purpose=None if charging_profile_purpose is None
            else Purpose(charging_profile_purpose))
        self.log.info("charging profiles cleared", profile_id=id, connector_id=connector_id,
                      purpose=charging_profile_purpose, stack_level=stack_level, found=ok)
        return call_result.ClearChargingProfile(
            status=ClearChargingProfileStatus.accepted if ok
            else ClearChargingProfileStatus.unknown)

    @_on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int,
                                  charging_rate_unit: str | None = None, **_: Any
                                  ) -> call_result.GetCompositeSchedule:
        now = _now()
        try:
            schedule = self._sessions().composite(
                connector_id, duration, None if charging_rate_unit is None
                else RateUnit(charging_rate_unit), now)
        except ProfileError as err:
            self.log.info("composite schedule refused", why=str(err))
            schedule = None
        if schedule is None:
            return call_result.GetCompositeSchedule(status=GetCompositeScheduleStatus.rejected)
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted, connector_id=connector_id,
            schedule_start=schedule["startSchedule"] if "startSchedule" in schedule
            else format_time(now), charging_schedule=schedule)
