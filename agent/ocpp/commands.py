"""The CSMS's commands about the local list, the cache and charging profiles, and the
settings the configuration keys give: the part of agent.ocpp.sessions.OcppSessions
(mixed in) that only reads or writes the stores, without the step's state."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.ocpp.auth import AuthMode, AuthSettings, iso_utc
from agent.ocpp.authlists import AuthorizationData, UpdateStatus, UpdateType
from agent.ocpp.configkeys import ConfigurationStore
from agent.ocpp.metervalues import MeterSettings, ReadingContext, parse_measurands, sampled_values
from agent.ocpp.profiles import ChargingProfile, InstallResult, ProfileSet, Purpose, RateUnit
from agent.ocpp.profilestore import ProfileStore
from agent.ocpp.store import OcppStore
from agent.ocpp.transactions import ChargerSessions, Observed

if TYPE_CHECKING:
    import structlog


class SessionCommands:
    """Expects OcppSessions' stores, keys, profiles, core and last observations."""

    store: OcppStore
    profile_store: ProfileStore
    keys: ConfigurationStore
    profiles: ProfileSet
    sessions: ChargerSessions
    mode: AuthMode
    free_id_tag: str
    ids: tuple[int, ...]
    observed: dict[int, Observed]
    _last_now: datetime | None
    log: structlog.typing.FilteringBoundLogger

    def auth_settings(self) -> AuthSettings:
        b = self.keys.boolean
        return AuthSettings(
            mode=self.mode, free_id_tag=self.free_id_tag,
            local_auth_list_enabled=b("LocalAuthListEnabled"),
            local_authorize_offline=b("LocalAuthorizeOffline"),
            local_pre_authorize=b("LocalPreAuthorize"),
            authorization_cache_enabled=b("AuthorizationCacheEnabled"),
            allow_offline_tx_for_unknown_id=b("AllowOfflineTxForUnknownId"),
            authorize_remote_tx_requests=b("AuthorizeRemoteTxRequests"),
            stop_transaction_on_invalid_id=b("StopTransactionOnInvalidId"))

    def meter_settings(self) -> MeterSettings:
        k = self.keys
        return MeterSettings(
            sample_interval_s=k.integer("MeterValueSampleInterval"),
            clock_aligned_interval_s=k.integer("ClockAlignedDataInterval"),
            sampled_measurands=parse_measurands(k.value("MeterValuesSampledData") or ""),
            aligned_measurands=parse_measurands(k.value("MeterValuesAlignedData") or ""),
            stop_on_ev_side_disconnect=k.boolean("StopTransactionOnEVSideDisconnect"))

    def send_local_list(self, version: int, update_type: UpdateType,
                        entries: Sequence[AuthorizationData]) -> UpdateStatus:
        if not self.keys.boolean("LocalAuthListEnabled"):
            return UpdateStatus.NOT_SUPPORTED
        return self.store.send_local_list(version, update_type, entries)

    def local_list_version(self) -> int:
        """GetLocalListVersion: -1 while the local list is disabled (OCPP 1.6 5.10)."""
        if not self.keys.boolean("LocalAuthListEnabled"):
            return -1
        return self.store.local_list_version()

    def clear_cache(self) -> bool:
        """ClearCache: False (Rejected) while the cache is disabled."""
        if not self.keys.boolean("AuthorizationCacheEnabled"):
            return False
        self.store.clear_cache()
        return True

    def set_profile(self, cid: int, profile: ChargingProfile) -> InstallResult:
        """SetChargingProfile; a TxProfile's transactionId is the CSMS's (rule 5)."""
        tx = self.sessions.active(cid) if cid in self.ids else None
        if profile.purpose is Purpose.TX and profile.transaction_id is not None:
            local = self.store.local_tx_id_for(profile.transaction_id)
            if local is None:
                return InstallResult(accepted=False, reason=f"transactionId "
                                     f"{profile.transaction_id} is not known here")
            profile = replace(profile, transaction_id=local)
        result = self.profiles.install(cid, profile, active_transaction_id=None if tx is None
                                       else tx.local_tx_id)
        self._log_install(cid, profile, result)
        if result.accepted:
            self._save_profiles()
        return result

    def clear_profiles(self, *, profile_id: int | None, connector_id: int | None,
                       purpose: Purpose | None, stack_level: int | None) -> bool:
        cleared = self.profiles.clear(profile_id=profile_id, connector_id=connector_id,
                                      purpose=purpose, stack_level=stack_level)
        if cleared:
            self._save_profiles()
        return cleared

    def composite(self, cid: int, duration_s: int, unit: RateUnit | None, now: datetime
                  ) -> dict[str, Any] | None:
        """GetCompositeSchedule's chargingSchedule from now, None = Rejected."""
        tx = self.sessions.active(cid) if cid in self.ids else None
        return self.profiles.composite_schedule(
            cid, now, duration_s, unit, tx_start=None if tx is None else tx.started_at,
            tx_id=None if tx is None else tx.local_tx_id)

    def meter_values_now(self, connector_id: int | None) -> list[dict[str, Any]]:
        """TriggerMessage MeterValues: one MeterValues payload per connector (camelCase),
        from the last step's readings, context Trigger."""
        out = []
        settings = self.meter_settings()
        for cid in self.ids if connector_id in (None, 0) else (connector_id,):
            o = self.observed.get(cid)
            if o is None or self._last_now is None:
                continue
            values = sampled_values(o.meter, o.offered_a, settings.sampled_measurands,
                                    ReadingContext.TRIGGER)
            if not values:
                continue
            payload: dict[str, Any] = {"connectorId": cid, "meterValue": [
                {"timestamp": iso_utc(self._last_now),
                 "sampledValue": values}]}
            tx = self.sessions.active(cid)
            rec = None if tx is None else self.store.transaction(tx.local_tx_id)
            if rec is not None and rec.csms_tx_id is not None:
                payload["transactionId"] = rec.csms_tx_id
            out.append(payload)
        return out

    def _save_profiles(self) -> None:
        try:
            self.profile_store.save_all(self.profiles.entries())
        except sqlite3.Error as err:
            self.log.error("charging profiles not saved", why=str(err))

    def _log_install(self, cid: int, p: ChargingProfile, r: InstallResult) -> None:
        self.log.info("charging profile", connector_id=cid, profile_id=p.profile_id,
                      purpose=p.purpose.value, accepted=r.accepted, why=r.reason,
                      replaced=list(r.replaced_ids), clamped_to_a=r.clamped_to_a)
