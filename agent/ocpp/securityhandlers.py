"""The charge point's side of the OCPP 1.6 security whitepaper (ed. 2): certificate
management and ExtendedTriggerMessage, and the SecurityProfile change. Mixed into
agent.ocpp.chargepoint.ChargePoint, whose rule 4 the handlers follow: they translate and
hand the work to the injected `CertStore`, `SecurityEvents` and profile check.

Rules:
 1. ExtendedTriggerMessage answers as TriggerMessage does (agent.ocpp.corehandlers) for
    BootNotification, Heartbeat, StatusNotification, MeterValues and
    FirmwareStatusNotification; SignChargePointCertificate is Accepted when a certificate
    store exists; LogStatusNotification is NotImplemented (GetLog is not built). What is
    Accepted is sent after the answer, through the session's trigger queue.
 2. SignChargePointCertificate: a CSR made on the charger (agent.ocpp.certstore rule 1)
    goes out in SignCertificate.req; the CSMS's answer is logged.
 3. CertificateSigned installs the chain (certstore rule 2): Accepted, and the next
    connection presents it; Rejected with InvalidChargePointCertificate in the security
    log when it does not fit. An installed certificate is a
    ReconfigurationOfSecurityParameters event; so is each installed or deleted root.
 4. InstallCertificate: Accepted (installed or there already), Rejected (not a CA
    certificate valid now, or the store is full: logged why), Failed (the disk).
    GetInstalledCertificateIds: Accepted with the hash data, NotFound if none.
    DeleteCertificate: Accepted, NotFound, Failed (the disk).
 5. ChangeConfiguration SecurityProfile follows agent.ocpp.security rule 3: a refusal is
    Rejected and a ReconfigurationOfSecurityParameters event saying why; an accepted
    higher profile is stored, is such an event, and the charge point reconnects with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cryptography import x509
from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.datatypes import CertificateHashData
from ocpp.v16.enums import (
    Action,
    CertificateSignedStatus,
    CertificateStatus,
    ConfigurationStatus,
    DeleteCertificateStatus,
    GetInstalledCertificateStatus,
    HashAlgorithm,
    MessageTrigger,
    TriggerMessageStatus,
)

from agent.ocpp.certstore import CertError, CertStore, HashData, RootUse
from agent.ocpp.configkeys import ChangeStatus, ConfigurationStore
from agent.ocpp.corehandlers import SessionEnd
from agent.ocpp.security import SecurityEvents

if TYPE_CHECKING:
    import structlog

_F = TypeVar("_F", bound=Callable[..., Any])


def _on(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], on(action))


def _after(action: str) -> Callable[[_F], _F]:
    return cast(Callable[[_F], _F], after(action))


def _now() -> datetime:
    return datetime.now(UTC)


def _describe(cert: x509.Certificate) -> str:
    return (f"{cert.subject.rfc4514_string()}, serial {cert.serial_number:x}, valid to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}")


class SecurityHandlers:
    """Rules 1-5; expects the ChargePoint's `security`, `certs`, `check_profile`,
    `settings`, `log`, trigger queue and `request`."""

    security: SecurityEvents
    certs: CertStore | None
    check_profile: Callable[[int], str | None]
    settings: ConfigurationStore
    log: structlog.typing.FilteringBoundLogger
    _triggers: asyncio.Queue[tuple[MessageTrigger, int | None]]
    _queue_trigger: Callable[[str, int | None], None]  # CoreHandlers'
    _end_after_answer: SessionEnd | None

    if TYPE_CHECKING:  # the ChargePoint's and CoreHandlers'
        async def request(self, payload: Any) -> Any: ...

        def _trigger_verdict(self, message: str, connector_id: int | None
                             ) -> TriggerMessageStatus: ...

    # --- ExtendedTriggerMessage (rules 1, 2) -------------------------------------------------
    def _extended_verdict(self, message: str, connector_id: int | None
                          ) -> TriggerMessageStatus:
        if message == MessageTrigger.sign_charge_point_certificate:
            return TriggerMessageStatus.accepted if self.certs is not None \
                else TriggerMessageStatus.rejected
        if message == MessageTrigger.log_status_notification:
            return TriggerMessageStatus.not_implemented
        return self._trigger_verdict(message, connector_id)

    @_on(Action.extended_trigger_message)
    def on_extended_trigger_message(self, requested_message: str,
                                    connector_id: int | None = None, **_: Any
                                    ) -> call_result.ExtendedTriggerMessage:
        verdict = self._extended_verdict(requested_message, connector_id)
        self.log.info("extended trigger message", message=requested_message,
                      connector_id=connector_id, status=verdict.value)
        return call_result.ExtendedTriggerMessage(status=verdict)

    @_after(Action.extended_trigger_message)
    def after_extended_trigger_message(self, requested_message: str,
                                       connector_id: int | None = None, **_: Any) -> None:
        if self._extended_verdict(requested_message, connector_id) is not \
                TriggerMessageStatus.accepted:
            return
        self._queue_trigger(requested_message, connector_id)

    async def _sign_certificate(self) -> None:
        """Rule 2."""
        if self.certs is None:
            return
        try:
            csr = self.certs.make_csr()
        except OSError as err:
            self.log.error("CSR not made: the key cannot be stored", why=str(err))
            return
        result = await self.request(call.SignCertificate(csr=csr))
        self.log.info("certificate signing requested", status=None if result is None
                      else result.status)

    # --- certificates (rules 3, 4) -----------------------------------------------------------
    @_on(Action.certificate_signed)
    def on_certificate_signed(self, certificate_chain: str, **_: Any
                              ) -> call_result.CertificateSigned:
        try:
            if self.certs is None:
                raise CertError("this charge point keeps no certificates")
            leaf = self.certs.install_signed(certificate_chain, _now())
        except (CertError, OSError) as err:
            self.security.record("InvalidChargePointCertificate", f"refused: {err}")
            return call_result.CertificateSigned(status=CertificateSignedStatus.rejected)
        self.security.record("ReconfigurationOfSecurityParameters",
                             f"charge point certificate installed: {_describe(leaf)}")
        return call_result.CertificateSigned(status=CertificateSignedStatus.accepted)

    @_on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any
                               ) -> call_result.InstallCertificate:
        use = RootUse(certificate_type)
        try:
            if self.certs is None:
                raise CertError("this charge point keeps no certificates")
            new = self.certs.install_root(use, certificate, _now())
        except CertError as err:
            self.log.warning("root certificate refused", use=use.value, why=str(err))
            return call_result.InstallCertificate(status=CertificateStatus.rejected)
        except OSError as err:
            self.log.error("root certificate not stored", use=use.value, why=str(err))
            return call_result.InstallCertificate(status=CertificateStatus.failed)
        if new:
            self.security.record("ReconfigurationOfSecurityParameters",
                                 f"{use.value} installed")
        return call_result.InstallCertificate(status=CertificateStatus.accepted)

    @_on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(self, certificate_type: str, **_: Any
                                         ) -> call_result.GetInstalledCertificateIds:
        found = [] if self.certs is None else self.certs.installed(RootUse(certificate_type))
        if not found:
            return call_result.GetInstalledCertificateIds(
                status=GetInstalledCertificateStatus.not_found)
        return call_result.GetInstalledCertificateIds(
            status=GetInstalledCertificateStatus.accepted,
            certificate_hash_data=[CertificateHashData(
                hash_algorithm=HashAlgorithm(h.hash_algorithm),
                issuer_name_hash=h.issuer_name_hash, issuer_key_hash=h.issuer_key_hash,
                serial_number=h.serial_number) for h in found])

    @_on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, Any], **_: Any
                              ) -> call_result.DeleteCertificate:
        d = certificate_hash_data
        wanted = HashData(hash_algorithm=d["hash_algorithm"],
                          issuer_name_hash=d["issuer_name_hash"],
                          issuer_key_hash=d["issuer_key_hash"], serial_number=d["serial_number"])
        try:
            gone = self.certs is not None and wanted.hash_algorithm == "SHA256" \
                and self.certs.delete(wanted)
        except OSError as err:
            self.log.error("root certificate not deleted", why=str(err))
            return call_result.DeleteCertificate(status=DeleteCertificateStatus.failed)
        if not gone:
            return call_result.DeleteCertificate(status=DeleteCertificateStatus.not_found)
        self.security.record("ReconfigurationOfSecurityParameters",
                             f"root certificate deleted: serial {wanted.serial_number}")
        return call_result.DeleteCertificate(status=DeleteCertificateStatus.accepted)

    # --- SecurityProfile (rule 5) ------------------------------------------------------------
    def change_security_profile(self, value: str) -> call_result.ChangeConfiguration:
        """ChangeConfiguration SecurityProfile (called by CoreHandlers)."""
        new = value.strip()
        problem = f"SecurityProfile must be 0-3, not {value!r}" \
            if not (new.isascii() and new.isdigit() and int(new) <= 3) \
            else self.check_profile(int(new))
        if problem is not None:
            self.security.record("ReconfigurationOfSecurityParameters",
                                 f"SecurityProfile {new[:8]} refused: {problem}")
            return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)
        before = self.settings.integer("SecurityProfile")
        outcome = self.settings.change("SecurityProfile", new)
        if outcome.status is not ChangeStatus.ACCEPTED:  # cannot happen: checked above
            return call_result.ChangeConfiguration(status=outcome.status.value)
        if int(new) > before:
            self.security.record("ReconfigurationOfSecurityParameters",
                                 f"SecurityProfile {before} -> {new}: reconnecting")
            self._end_after_answer = SessionEnd.RECONNECT
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)
