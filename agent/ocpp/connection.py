"""The websocket to the back office: connect, authenticate, run a ChargePoint, reconnect.

Rules:
 1. URL = the configured endpoint + "/" + the charge point id (OCPP-J 1.6 section 3.1),
    subprotocol "ocpp1.6"; a CSMS that does not confirm the subprotocol is left.
 2. Security profiles (OCPP 1.6 security whitepaper ed. 2): 0 = none; 1 = HTTP Basic auth
    (username = charge point id, password = AuthorizationKey) over ws://; 2 = the same
    over wss://, the CSMS certificate verified against `ca_file` (or the system's CAs)
    and the Central System roots the CSMS installed (agent.ocpp.certstore); 3 = wss://
    with the charge point's client certificate and no Basic auth. A key the CSMS set
    (ChangeConfiguration AuthorizationKey, hex) wins over the file's, and so does a
    certificate it signed (CertificateSigned); the profile in force is the higher of the
    file's and the one the CSMS set (agent.ocpp.security rule 3).
 2a. Security events (agent.ocpp.security): StartupOfTheDevice when `run` starts; a
    refused connection, an untrusted CSMS certificate and a TLS version or cipher suite
    the CSMS would not speak go to the security log: the agent's (agent/audit.py, one file
    `<state_dir>/security.jsonl`), opened and closed by the agent, not by this link.
 3. Reconnect after a failure with capped exponential backoff and jitter (`Backoff`); the
    count restarts once a boot is Accepted. A Reset or a new AuthorizationKey reconnects
    at once (a Reset after the charger's part of it, `ChargerPort.reset`).
 4. Charging never waits for the back office: the agent's step only calls `publish`
    (no await); everything else runs in `run`, under its own task group.
 5. Every change of the link's state is logged as event "ocpp link" with the charge
    point id and state (the car park view reads them).
 6. Statuses outlive the connections: the client's `StatusBoard` (agent.ocpp.reports)
    keeps each connector's latest and hands the changes to the registered session's
    ChargePoint.
 7. Supervision: an error nobody expected (a bug, a frame the screening missed, the
    charger's reset failing) is logged as "ocpp link failed, restarting" with the charge
    point id, error and traceback, and the link restarts with the backoff of rule 3; it
    never ends the link or the agent (whose SIGTERM exit stays 0).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import random
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from ocpp.v16.enums import RegistrationStatus
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from agent.ocpp.certstore import CertStore
from agent.ocpp.chargepoint import ChargePoint
from agent.ocpp.configkeys import ConfigurationStore
from agent.ocpp.corehandlers import ChargerPort, SessionEnd
from agent.ocpp.frames import MAX_FRAME_BYTES
from agent.ocpp.reports import BootIdentity, StatusBoard, StatusReport
from agent.ocpp.security import SecurityEvents, profile_change_problem
from agent.ocpp.sessions import OcppSessions
from agent.ocpp.settings import OcppSettings
from hw.securitylog import SecurityLog

SUBPROTOCOL = Subprotocol("ocpp1.6")
OPEN_TIMEOUT_S = 10.0  # team choice: a websocket handshake over 4G takes seconds
CLOSE_TIMEOUT_S = 2.0
log = structlog.get_logger("agent.ocpp")


class LinkState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"  # websocket open, boot not answered yet
    PENDING = "pending"  # boot Pending
    REJECTED = "rejected"  # boot Rejected
    ACCEPTED = "accepted"
    OFFLINE = "offline"  # waiting to retry
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Waits between connection attempts: doubling from `first_s` up to `cap_s`, each
    drawn from [half, all] of that (equal jitter: chargers that lost the CSMS together do
    not return together)."""

    first_s: float = 1.0
    cap_s: float = 60.0  # team choice: a returning CSMS sees each charger within a minute

    def __post_init__(self) -> None:
        if not 0.0 < self.first_s <= self.cap_s:
            raise ValueError(f"need 0 < first_s <= cap_s, got {self.first_s}, {self.cap_s}")

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """The wait after `failures` (>= 1) attempts in a row failed."""
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        full = min(self.cap_s, self.first_s * 2.0 ** min(failures - 1, 32))
        return full / 2.0 + rng.uniform(0.0, full / 2.0)


def endpoint_uri(settings: OcppSettings) -> str:
    """Rule 1: the websocket URL with the charge point id appended."""
    return f"{settings.url.rstrip('/')}/{settings.charge_point_id}"


def basic_auth(charge_point_id: str, password: bytes) -> str:
    """The Authorization header value (RFC 7617; whitepaper: username = the id)."""
    token = base64.b64encode(charge_point_id.encode() + b":" + password).decode("ascii")
    return f"Basic {token}"


def tls_context(settings: OcppSettings, *, roots: Sequence[Path] = (),
                client: tuple[Path, Path] | None = None) -> ssl.SSLContext | None:
    """For wss://: verify the CSMS against `ca_file` (or the system's CAs) and `roots`,
    and its name; with `client` (certificate chain, key), present that certificate
    (profile 3). OSError or ssl.SSLError if a file cannot be read."""
    if not settings.url.startswith("wss://"):
        return None
    cafile = str(settings.ca_file) if settings.ca_file is not None else None
    context = ssl.create_default_context(cafile=cafile)
    for root in roots:
        context.load_verify_locations(cafile=str(root))
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # whitepaper: TLS 1.2 or later
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context


class OcppClient:
    """The charger's link to its CSMS, for the life of the agent."""

    def __init__(self, settings: OcppSettings, *, identity: BootIdentity, port: ChargerPort,
                 store: ConfigurationStore, backoff: Backoff | None = None,
                 rng: random.Random | None = None, response_timeout_s: float = 30.0,
                 sessions: OcppSessions | None = None,
                 security_log: SecurityLog | None) -> None:
        """`security_log`: the agent's, which outlives this link (None: events go to the
        console only). OSError if the state folder's certificate store cannot
        be made."""
        self.settings, self.identity, self.port, self.store = settings, identity, port, store
        self.sessions = sessions
        store.give("SecurityProfile", str(settings.security_profile))
        self.certs = CertStore(port.state_dir, charge_point_id=settings.charge_point_id,
                               trusted=[] if settings.ca_file is None else [settings.ca_file],
                               cpo_name=settings.cpo_name)
        self.security_log = security_log
        self.security = SecurityEvents(
            self.security_log, charge_point_id=settings.charge_point_id,
            outbox=None if sessions is None else sessions.store,
            wake=(lambda: None) if sessions is None else sessions.outbox_ready.set)
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.response_timeout_s = response_timeout_s
        self.board = StatusBoard()
        self.state = LinkState.STOPPED
        self.failures = 0
        self.log = log.bind(charger_id=settings.charge_point_id)

    def publish(self, reports: Iterable[StatusReport]) -> None:
        """The connectors' status as of this step (rule 4: never waits)."""
        for report in reports:
            self.board.publish(report)

    def profile(self) -> int:
        """Rule 2: the security profile in force."""
        return max(self.settings.security_profile, self.store.integer("SecurityProfile"))

    def client_pair(self) -> tuple[Path, Path] | None:
        """Rule 2: the client certificate and key: the CSMS-signed one, else the file's."""
        installed = self.certs.client_pair()
        if installed is not None:
            return installed
        s = self.settings
        return None if s.client_cert is None or s.client_key is None \
            else (s.client_cert, s.client_key)

    def profile_change_problem(self, new: int) -> str | None:
        """agent.ocpp.security rule 3 for this charge point."""
        has_key = self.store.value("AuthorizationKey") is not None \
            or self.settings.authorization_key is not None
        return profile_change_problem(current=self.profile(), new=new, url=self.settings.url,
                                      has_key=has_key,
                                      has_client_cert=self.client_pair() is not None)

    def password(self) -> bytes | None:
        """Rule 2: the Basic auth password, None with profiles 0 and 3."""
        if self.profile() in (0, 3):
            return None
        stored = self.store.value("AuthorizationKey")
        if stored is not None:
            return bytes.fromhex(stored)
        key = self.settings.authorization_key
        return None if key is None else key.encode()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a registered connection until `stop` is set; never raises but for a cancel
        (a dropped or refused connection is logged and retried, any other error too)."""
        uri = endpoint_uri(self.settings)
        self.security.record("StartupOfTheDevice", f"OCPP link starting, security profile "
                             f"{self.profile()}")
        await self._run(uri, stop)

    async def _run(self, uri: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._set(LinkState.CONNECTING, url=uri)
            try:
                end, why = await self._session(uri, stop)
                if end is not None and not stop.is_set():
                    self.log.info("ocpp session ended", reason=end.value)
                    if end in (SessionEnd.SOFT_RESET, SessionEnd.HARD_RESET):
                        self.port.reset(hard=end is SessionEnd.HARD_RESET)
            except Exception as err:  # rule 7: the supervisor of the link
                error = _describe(err.exceptions[0] if isinstance(err, ExceptionGroup)
                                  and len(err.exceptions) == 1 else err)
                self.log.error("ocpp link failed, restarting", error=error, exc_info=err)
                end, why = None, f"unexpected {error}"
            if stop.is_set():
                break
            if end is not None:
                continue
            self.failures += 1
            delay_s = round(self.backoff.delay_s(self.failures, self.rng), 3)
            self._set(LinkState.OFFLINE, why=why, retry_in_s=delay_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):  # not wait_for: 3.11's can swallow a cancel
                    await stop.wait()
        self._set(LinkState.STOPPED)

    async def _session(self, uri: str, stop: asyncio.Event) -> tuple[SessionEnd | None, str]:
        """One connection: (how the CSMS ended it, or None; why it failed)."""
        password = self.password()
        headers = {"Authorization": basic_auth(self.settings.charge_point_id, password)} \
            if password is not None else None
        ping_s = self.store.integer("WebSocketPingInterval") or None
        why = ""
        try:
            async with connect(uri, subprotocols=[SUBPROTOCOL], additional_headers=headers,
                               ssl=self._tls(), open_timeout=OPEN_TIMEOUT_S,
                               close_timeout=CLOSE_TIMEOUT_S, ping_interval=ping_s,
                               ping_timeout=ping_s, max_size=MAX_FRAME_BYTES) as ws:
                if ws.subprotocol != SUBPROTOCOL:
                    return None, f"the CSMS did not confirm subprotocol {SUBPROTOCOL}"
                self._set(LinkState.CONNECTED)
                cp = ChargePoint(self.settings.charge_point_id, ws, identity=self.identity,
                                 port=self.port, settings=self.store, board=self.board,
                                 on_registration=self._registered,
                                 response_timeout_s=self.response_timeout_s,
                                 sessions=self.sessions, security=self.security,
                                 certs=self.certs,
                                 check_profile=self.profile_change_problem)
                return await cp.run(stop), ""
        except* InvalidStatus as group:
            why = _refusal(group.exceptions[0])
            if _status(group.exceptions[0]) in (401, 403):
                self.security.record("FailedToAuthenticateAtCentralSystem", why, peer=uri)
        except* (WebSocketException, OSError, TimeoutError) as group:
            why = _describe(group.exceptions[0])
            event = _tls_event(group.exceptions[0])
            if event is not None:
                self.security.record(event, why, peer=uri)
        return None, why

    def _tls(self) -> ssl.SSLContext | None:
        return tls_context(self.settings, roots=self.certs.root_files(),
                           client=self.client_pair() if self.profile() == 3 else None)

    def _registered(self, status: RegistrationStatus) -> None:
        state = {RegistrationStatus.accepted: LinkState.ACCEPTED,
                 RegistrationStatus.pending: LinkState.PENDING}.get(status, LinkState.REJECTED)
        if state is LinkState.ACCEPTED:
            self.failures = 0
        self._set(state)

    def _set(self, state: LinkState, **details: Any) -> None:
        if state is not self.state or details.get("why"):
            self.log.info("ocpp link", state=state.value,
                          charge_point_id=self.settings.charge_point_id, **details)
        self.state = state


def _status(err: BaseException) -> object:
    return getattr(getattr(err, "response", None), "status_code", "?")


def _tls_event(err: BaseException) -> str | None:
    """Rule 2a: the security event of a failed TLS handshake, None for other errors."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return "InvalidCentralSystemCertificate"
    reason = str(getattr(err, "reason", "") or "") if isinstance(err, ssl.SSLError) else ""
    if "VERSION" in reason:  # e.g. TLSV1_ALERT_PROTOCOL_VERSION, UNSUPPORTED_PROTOCOL
        return "InvalidTLSVersion"
    if "CIPHER" in reason or reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        return "InvalidTLSCipherSuite"
    return None


def _refusal(err: BaseException) -> str:
    status = _status(err)
    hint = " (check charge_point_id, authorization_key or client_cert)" \
        if status in (401, 403) else ""
    return f"the CSMS refused the connection: HTTP {status}{hint}"


def _describe(err: BaseException) -> str:
    if isinstance(err, ConnectionClosed):
        return f"connection closed ({err})"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"CSMS certificate not trusted: {err.verify_message}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
