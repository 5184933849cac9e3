"""Security events and the SecurityProfile rule (OCPP 1.6 security whitepaper ed. 2).

Rules:
 1. Every security event goes to the agent's security log (`<state_dir>/security.jsonl`,
    hw.securitylog: append-only, nothing secret) as kind `ocpp_...` (`CRITICAL`,
    `NON_CRITICAL`), who = the charge point id, detail = whitepaper name and techInfo.
    The log is the agent's (agent/audit.py: one file per charger, also written by the
    master link), opened and closed by the agent.
 2. The whitepaper's critical events are also sent to the CSMS as
    SecurityEventNotification, queued in the durable outbox (agent.ocpp.store) like
    transaction messages, so they survive a link that is down and a restart. Those this
    charge point detects (whitepaper names):
      StartupOfTheDevice                  the agent started its OCPP link
      ResetOrReboot                       the CSMS asked for a Reset (soft or hard)
      ReconfigurationOfSecurityParameters SecurityProfile or AuthorizationKey changed or
                                          a change refused, a charge point certificate
                                          or a root certificate installed or deleted
    Non-critical events are only logged (the whitepaper leaves sending them to the
    charge point): FailedToAuthenticateAtCentralSystem (HTTP 401/403),
    InvalidCentralSystemCertificate (the CSMS's certificate did not verify),
    InvalidTLSVersion, InvalidTLSCipherSuite (the handshake failed on them),
    InvalidChargePointCertificate (a CertificateSigned refused), InvalidMessages (a
    frame refused by agent.ocpp.frames).
    Not detected here: FirmwareUpdated, InvalidFirmwareSignature and
    InvalidFirmwareSigningCertificate (no firmware update over OCPP), SettingSystemTime
    (the agent does not set the clock), SecurityLogWasCleared (the log is never cleared,
    only rotated), MemoryExhaustion, TamperDetectionActivated, AttemptedReplayAttacks,
    CentralSystemFailedToAuthenticate.
 3. SecurityProfile (whitepaper "Security profiles"): a change to a lower profile is
    Rejected ("it is not allowed to revert to a lower security profile"); the same one
    is Accepted and changes nothing; a higher one is Accepted only if what it needs is
    there: profile 1 or 2 an AuthorizationKey, 2 and 3 a wss:// url, 1 a ws:// url, 3 a
    client certificate (configured or installed by CertificateSigned). The effective
    profile is the higher of the file's and the one the CSMS set.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from agent.ocpp.settings import ocpp_url_problem
from hw.securitylog import SecurityLog

if TYPE_CHECKING:
    from agent.ocpp.store import OcppStore

# Rule 1: the security log's kind of each event (its names are at most 40 characters).
CRITICAL = {"StartupOfTheDevice": "ocpp_startup", "ResetOrReboot": "ocpp_reset",
            "ReconfigurationOfSecurityParameters": "ocpp_security_reconfigured"}
NON_CRITICAL = {"FailedToAuthenticateAtCentralSystem": "ocpp_csms_refused_credentials",
                "InvalidCentralSystemCertificate": "ocpp_csms_certificate_invalid",
                "InvalidTLSVersion": "ocpp_tls_version_invalid",
                "InvalidTLSCipherSuite": "ocpp_tls_cipher_suite_invalid",
                "InvalidChargePointCertificate": "ocpp_cp_certificate_refused",
                "InvalidMessages": "ocpp_message_invalid"}
TECH_INFO_MAX = 255  # SecurityEventNotification.req techInfo: string(255)
log = structlog.get_logger("agent.ocpp.security")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SecurityEvents:
    """Rules 1 and 2. `outbox`: where critical events queue (None: logged only, e.g. a
    charge point without transactions); `wake` tells the outbox sender."""

    def __init__(self, security_log: SecurityLog | None, *, charge_point_id: str,
                 outbox: OcppStore | None = None, wake: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.security_log, self.outbox, self.wake = security_log, outbox, wake
        self.charge_point_id, self.clock = charge_point_id, clock
        self.log = log.bind(charger_id=charge_point_id)

    def record(self, event: str, tech_info: str, *, peer: str = "") -> None:
        """Log `event` (a whitepaper name) and, if critical, queue its notification.
        Never raises for a disk that fails: that is logged (charging goes on)."""
        kind = CRITICAL.get(event) or NON_CRITICAL.get(event)
        if kind is None:
            raise ValueError(f"{event!r} is not a security event this charge point sends")
        tech_info = tech_info[:TECH_INFO_MAX]
        self.log.warning("security event", security_event=event, tech_info=tech_info)
        if self.security_log is not None:
            try:
                self.security_log.record(kind, who=self.charge_point_id, peer=peer,
                                         detail=f"{event}: {tech_info}")
            except OSError as err:
                self.log.error("security log not written", security_event=event,
                               why=str(err))
        if event not in CRITICAL or self.outbox is None:
            return
        try:
            self.outbox.enqueue("SecurityEventNotification", {
                "type": event, "timestamp": _iso(self.clock()), "techInfo": tech_info},
                local_tx_id=None)
        except sqlite3.Error as err:
            self.log.error("security event not queued", security_event=event, why=str(err))
            return
        self.wake()


def profile_change_problem(*, current: int, new: int, url: str, has_key: bool,
                           has_client_cert: bool) -> str | None:
    """Rule 3: why ChangeConfiguration SecurityProfile `new` is refused, None if not."""
    if new < current:
        return (f"SecurityProfile {new} is lower than the profile in force ({current}): "
                "a charge point never reverts to a lower security profile")
    if new == current:
        return None
    if new in (1, 2) and not has_key:
        return f"SecurityProfile {new} needs an AuthorizationKey: set one first"
    url_problem = ocpp_url_problem(url, new)
    if url_problem is not None:
        return url_problem
    if new == 3 and not url.startswith("wss://"):
        return "SecurityProfile 3 is TLS with a client certificate: the url must be wss://"
    if new == 3 and not has_client_cert:
        return ("SecurityProfile 3 needs a charge point certificate: configure "
                "client_cert/client_key or install one (SignCertificate, CertificateSigned)")
    return None
