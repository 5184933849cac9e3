"""A small back office (CSMS): the central-system side of OCPP 1.6J, for tests and `make run`.

    python -m hw.sim.csms --listen 127.0.0.1:9000 [--password ID=KEY ...]
                          [--boot Pending,Accepted] [--heartbeat-s 300] [--cert F --key F]
                          [--client-ca F]

prints one JSON line {"listening": "ws://127.0.0.1:9000"} and serves until SIGINT/SIGTERM.
It is the ocpp library's `ChargePoint` used from the server side, one per connection
(hw.sim.csmssession), on a websockets server that speaks subprotocol "ocpp1.6" only.

Rules:
 1. A charge point connects at ws://host:port/<any path>/<charge point id>: the last
    path segment is its id. A newer connection of the same id replaces the older one.
 2. With `passwords`, HTTP Basic auth (security profiles 1 and 2) is checked before the
    websocket opens: username = the id, password as set; otherwise HTTP 401. With an
    `ssl` context the server speaks wss://; one with verify_mode CERT_REQUIRED refuses a
    client without a certificate its CA signed at the handshake (security profile 3),
    and with `check_client_id` the certificate's subject CN must be the charge point id
    of the path, otherwise HTTP 403. The client certificate of each charge point's last
    connection is kept (`client_certificate`, DER).
 3. Boots are answered from `boot_replies` in turn per charge point (e.g. Pending, then
    Accepted; the last one repeats), with `retry_interval_s` while Pending/Rejected and
    `heartbeat_interval_s` once Accepted.
 4. Every CALL a charge point sends is recorded in order (`received`, valid or not, with
    its unique id) and logged. Authorize accepts every idTag unless `id_tags` says
    otherwise; transactions are numbered 1, 2, ... per CSMS; StopTransaction, MeterValues
    and status messages are acknowledged; DataTransfer gets UnknownVendorId;
    SecurityEventNotification is acknowledged and SignCertificate Accepted (a test signs
    the CSR and sends CertificateSigned with `call`).
 5. `call` sends any command to a connected charge point and returns its answer (an
    OCPPError for a CallError); `call_raw` sends a payload as it is, without validation,
    and returns the raw answer (for tests of malformed CALLs); `send_frame` sends any text
    frame at all (hostile input: not JSON, too deep, too big) and, given a unique id,
    returns the answer that carries it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import http
import json
import signal
import ssl
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from ocpp.v16.enums import (
    AuthorizationStatus,
    RegistrationStatus,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from hw.logconfig import configure_logging
from hw.sim.csmssession import CsmsSession, RawAnswer, Received

SUBPROTOCOL = Subprotocol("ocpp1.6")
log = structlog.get_logger("hw.sim.csms")


def basic_auth(charge_point_id: str, password: bytes) -> str:
    """The Authorization header a charge point must send (RFC 7617)."""
    token = base64.b64encode(charge_point_id.encode() + b":" + password).decode("ascii")
    return f"Basic {token}"


class Csms:
    """The back office. `async with Csms(...) as csms:` serves on `csms.url`."""

    def __init__(self, *, boot_replies: Sequence[str] = ("Accepted",),
                 retry_interval_s: int = 1, heartbeat_interval_s: int = 300,
                 passwords: Mapping[str, bytes] | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 id_tags: Mapping[str, str] | None = None,
                 response_timeout_s: float = 10.0, check_client_id: bool = False) -> None:
        if not boot_replies:
            raise ValueError("boot_replies: give at least one reply")
        self.boot_replies = tuple(RegistrationStatus(r) for r in boot_replies)
        self.retry_interval_s = retry_interval_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.passwords = dict(passwords) if passwords is not None else None
        self.ssl_context = ssl_context
        self.check_client_id = check_client_id
        self.client_certs: dict[str, bytes] = {}
        self.id_tags = dict(id_tags) if id_tags is not None else None
        self.response_timeout_s = response_timeout_s
        self.transactions = 0
        self.url = ""
        self._log: list[Received] = []
        self._changed = asyncio.Condition()
        self._boots: dict[str, int] = {}
        self._sessions: dict[str, CsmsSession] = {}
        self._server: Server | None = None

    async def __aenter__(self) -> Csms:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the URL charge points append their id to."""
        self._server = await serve(self._serve, host, port, subprotocols=[SUBPROTOCOL],
                                   process_request=self._check, ssl=self.ssl_context)
        bound = self._server.sockets[0].getsockname()
        scheme = "wss" if self.ssl_context is not None else "ws"
        self.url = f"{scheme}://{bound[0]}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # --- what tests look at ------------------------------------------------------------
    def connected(self) -> set[str]:
        return set(self._sessions)

    def client_certificate(self, charge_point_id: str) -> bytes | None:
        """The DER client certificate of the charge point's last accepted connection."""
        return self.client_certs.get(charge_point_id)

    def mark(self) -> int:
        """A position in the record: `wait_for(..., since=mark)` looks only after it."""
        return len(self._log)

    def received(self, charge_point_id: str, action: str | None = None, *, since: int = 0
                 ) -> list[Received]:
        return [r for r in self._log[since:] if r.charge_point_id == charge_point_id
                and (action is None or r.action == action)]

    async def wait_for(self, charge_point_id: str, action: str, *, count: int = 1,
                       since: int = 0, where: Callable[[Any], bool] | None = None,
                       timeout_s: float = 10.0) -> list[Received]:
        """The first `count` CALLs of `action` (whose payload `where` accepts) after
        `since`; TimeoutError listing what did arrive."""
        def found() -> list[Received]:
            return [r for r in self.received(charge_point_id, action, since=since)
                    if where is None or where(r.payload)]
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: len(found()) >= count)
        except TimeoutError:
            got = [r.action for r in self.received(charge_point_id, since=since)]
            raise TimeoutError(f"{charge_point_id}: not {count} x {action} within "
                               f"{timeout_s} s; received {got}") from None
        return found()[:count]

    async def call(self, charge_point_id: str, payload: Any, *,
                   skip_schema_validation: bool = False) -> Any:
        """Send a command (an `ocpp.v16.call` payload); its CallResult, OCPPError for a
        CallError, KeyError if that charge point is not connected."""
        return await self._sessions[charge_point_id].call(
            payload, suppress=False, skip_schema_validation=skip_schema_validation)

    async def call_raw(self, charge_point_id: str, action: str, payload: Any) -> RawAnswer:
        """Send `payload` for `action` exactly as given (no validation)."""
        return await self._sessions[charge_point_id].call_raw(action, payload)

    async def send_frame(self, charge_point_id: str, text: str, *,
                         answer_to: str | None = None) -> RawAnswer | None:
        """Send one text frame exactly as given; with `answer_to`, the CallResult or
        CallError carrying that unique id (TimeoutError if none comes), else None."""
        return await self._sessions[charge_point_id].send_frame(text, answer_to)

    # --- the server --------------------------------------------------------------------
    def next_boot_reply(self, charge_point_id: str) -> RegistrationStatus:
        n = self._boots.get(charge_point_id, 0)
        self._boots[charge_point_id] = n + 1
        return self.boot_replies[min(n, len(self.boot_replies) - 1)]

    def tag_status(self, id_tag: str) -> str:
        if self.id_tags is None:
            return str(AuthorizationStatus.accepted)
        return str(self.id_tags.get(id_tag, AuthorizationStatus.invalid))

    async def record(self, received: Received) -> None:
        log.info("received", charge_point_id=received.charge_point_id,
                 action=received.action, payload=received.payload)
        async with self._changed:
            self._log.append(received)
            self._changed.notify_all()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        cp_id = _charge_point_id(request.path)
        if not cp_id:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "no charge point id\n")
        tls = connection.transport.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if self.check_client_id:
            names = _subject_cns(tls.getpeercert() if tls is not None else None)
            if names != [cp_id]:
                log.warning("refused: client certificate names another charge point",
                            charge_point_id=cp_id, certificate_cn=names)
                return connection.respond(http.HTTPStatus.FORBIDDEN,
                                          "certificate does not match the charge point id\n")
        if der is not None:
            self.client_certs[cp_id] = der
        if self.passwords is not None:
            expected = self.passwords.get(cp_id)
            given = request.headers.get("Authorization", "")
            if expected is None or not hmac.compare_digest(given, basic_auth(cp_id, expected)):
                log.warning("refused: bad credentials", charge_point_id=cp_id)
                response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "unauthorized\n")
                response.headers = Headers(response.headers)
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
                return response
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        cp_id = _charge_point_id(ws.request.path if ws.request else "")
        session = CsmsSession(cp_id, ws, self)
        self._sessions[cp_id] = session
        log.info("charge point connected", charge_point_id=cp_id)
        try:
            await session.start()
        except ConnectionClosed as err:
            log.info("charge point disconnected", charge_point_id=cp_id, why=str(err))
        finally:
            if self._sessions.get(cp_id) is session:
                del self._sessions[cp_id]


def _subject_cns(peer: Any) -> list[str]:
    """The subject commonNames of a verified peer certificate (ssl's getpeercert())."""
    if not peer:
        return []
    return [value for rdn in peer.get("subject", ()) for key, value in rdn
            if key == "commonName"]


def _charge_point_id(path: str) -> str:
    return urlsplit(path).path.rstrip("/").rpartition("/")[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="csms", description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any)")
    ap.add_argument("--password", action="append", default=[], metavar="ID=KEY",
                    help="require Basic auth; repeat per charge point")
    ap.add_argument("--boot", default="Accepted", help="boot replies in turn, e.g. "
                    "Pending,Accepted")
    ap.add_argument("--retry-s", type=int, default=10, help="boot retry interval")
    ap.add_argument("--heartbeat-s", type=int, default=300, help="heartbeat interval")
    ap.add_argument("--cert", help="PEM certificate chain: serve wss://")
    ap.add_argument("--key", help="PEM private key of --cert")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA "
                    "whose CN is the charge point id (security profile 3); needs --cert")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        ap.error("--listen takes host:port, e.g. 127.0.0.1:9000")
    passwords = None
    if args.password:
        pairs = [p.partition("=") for p in args.password]
        if any(not cp or not key for cp, _, key in pairs):
            ap.error("--password takes ID=KEY")
        passwords = {cp: key.encode() for cp, _, key in pairs}
    context = None
    if args.client_ca and not args.cert:
        ap.error("--client-ca needs --cert and --key (client certificates need wss://)")
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=args.client_ca)
    try:
        csms = Csms(boot_replies=args.boot.split(","), retry_interval_s=args.retry_s,
                    heartbeat_interval_s=args.heartbeat_s, passwords=passwords,
                    ssl_context=context, check_client_id=bool(args.client_ca))
    except ValueError as err:
        ap.error(str(err))
    configure_logging(args.log_level.upper(), stream=sys.stderr)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await csms.start(host or "127.0.0.1", int(port))
        try:
            print(json.dumps({"listening": csms.url}), flush=True)
            await stop.wait()
        finally:
            await csms.stop()

    try:
        asyncio.run(until_signalled())
    except OSError as err:  # e.g. the port is taken
        print(f"csms: cannot listen on {args.listen}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
