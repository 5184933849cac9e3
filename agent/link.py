"""The agent's end of AgentLink: one bidi stream to the master, kept up for ever.

1. Connect, send Hello, then the latest AgentState whenever the agent publishes one
   (latest wins: a slow link never queues stale states).
2. Welcome and Limits are handed to callbacks; the link does not interpret them (the
   lease and term rules live in agent/limits.py).
3. Any failure (master dead, refused, network) closes the stream; reconnect after a
   backoff from 0.2 s doubling to 2 s, with jitter so a car park does not reconnect in
   lockstep. Each attempt is a fresh channel whose connection may take gRPC's connect
   timeout (protos/link.py rule 4): a slow link needs round trips, not a fast give-up.
   Keepalive (rule 5) notices a silently dead master; the lease, not the keepalive, is
   what puts the agent on its fail-safe in time.
4. A refusal with FAILED_PRECONDITION or PERMISSION_DENIED (wrong group, closed group) is
   logged with the master's reason each time; the agent keeps charging on its fail-safe
   and keeps trying, since an installer may fix the master's side.
5. Mutual TLS (issue 11): the channel presents this charger's certificate and trusts only
   the site CA, and checks the master as the site's server name (protos/tls.py rule 2),
   so a fake master, or one of another site, fails the handshake: the agent logs a
   warning saying so and stays on its fail-safe. `agent.linktls.link_tls` loads the files
   at start and refuses a certificate that is not this charger's own (ConfigError).
6. With `audit` (agent/audit.py), a failed handshake (rule 5) and a refusal (rule 4) also
   go to the charger's security log, each reason once and then about once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import grpc
import structlog

from agent.audit import AgentAudit
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.link import AGENT_CHANNEL_OPTIONS
from protos.tls import (
    TlsMaterial,
    channel_credentials,
    channel_options,
)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 2.0
REFUSALS = ("PERMISSION_DENIED", "FAILED_PRECONDITION")  # rule 4: the master said no


async def _first(*events: asyncio.Event) -> None:
    """Return when any of `events` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


class LinkClosedError(Exception):
    """The master closed the stream; the message is its status code and details."""


def _handshake_hint(details: str) -> str:
    """What a failed TLS handshake most likely means, from gRPC's details ("" if the
    failure was not the handshake)."""
    lowered = details.lower()
    if not any(word in lowered for word in ("ssl", "handshake", "certificate", "tls")):
        return ""
    return ("TLS handshake with the master failed: it is not this site's master (its "
            "certificate is not from our CA or not a charger's), or it refused our "
            "certificate (expired, revoked, another site's)")


class MasterLink:
    """Keeps one AgentLink.Connect stream to `address` ("host:port") open.

    Under io7d (issue 13) `address` is a function giving the elected master's address at
    each (re)connect, None while no member leads; `retarget()` ends the current stream when
    the leader changes, so the agent dials the new one at once."""

    def __init__(
        self,
        address: str | Callable[[], str | None],
        hello: Callable[[], pb.Hello],
        on_welcome: Callable[[pb.Welcome], None],
        on_limits: Callable[[pb.Limits], None],
        *,
        rng: random.Random | None = None,
        tls: TlsMaterial | None = None,
        audit: AgentAudit | None = None,
    ) -> None:
        self._resolve: Callable[[], str | None] = (
            address if callable(address) else (lambda: address))
        self._address = self._resolve() or ""
        self._moved = asyncio.Event()
        self._tls = tls
        self._audit = audit
        self._hello = hello
        self._on_welcome = on_welcome
        self._on_limits = on_limits
        self._latest: pb.AgentState | None = None
        self._fresh = asyncio.Event()
        self._rng = rng or random.Random()
        self.connected = False
        self.last_error = ""
        self._log = structlog.get_logger("agent.link").bind(master=self._address)

    def publish(self, state: pb.AgentState) -> None:
        """Send `state` as soon as the stream can; replaces any unsent one."""
        self._latest = state
        self._fresh.set()

    def retarget(self) -> None:
        """The elected master changed: close the stream, dial the new one now."""
        self._moved.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect and reconnect until `stop` is set."""
        backoff = BACKOFF_START_S
        while not stop.is_set():
            address = self._resolve()
            self._moved.clear()
            if address is None:  # an election is on: nobody to dial yet
                self.last_error = "no elected master"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._moved.wait(), timeout=BACKOFF_START_S)
                continue
            if address != self._address:
                self._address = address
                self._log = structlog.get_logger("agent.link").bind(master=address)
            try:
                await self._session(stop)
                backoff = BACKOFF_START_S
            except grpc.aio.AioRpcError as err:
                self.last_error = f"{err.code().name}: {err.details()}"
                hint = _handshake_hint(err.details() or "") if self._tls else ""
                self._log.warning(hint or "master link lost", error=self.last_error)
                self._audit_failure("master_tls_refused" if hint else "")
            except (LinkClosedError, ConnectionError, OSError) as err:
                self.last_error = str(err)
                self._log.warning("master link lost", error=self.last_error)
                self._audit_failure("")
            finally:
                self.connected = False
            if self._moved.is_set():
                backoff = BACKOFF_START_S
                continue
            delay = backoff * (0.5 + self._rng.random())
            backoff = min(BACKOFF_MAX_S, backoff * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self._moved), timeout=delay)

    def _audit_failure(self, kind: str) -> None:
        """Rule 6: a handshake failure (`kind` given) or a refusal by the master."""
        if self._audit is None:
            return
        if not kind and self.last_error.startswith(REFUSALS):
            kind = "master_refused"
        if kind:
            self._audit.link_refused(kind, self.last_error, address=self._address)

    async def _session(self, stop: asyncio.Event) -> None:
        if self._tls is None:
            channel = grpc.aio.insecure_channel(self._address, options=AGENT_CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.secure_channel(
                self._address, channel_credentials(self._tls),
                options=[*AGENT_CHANNEL_OPTIONS, *channel_options(self._tls.site)])
        async with channel as ch:
            call = pb_grpc.AgentLinkStub(ch).Connect()  # type: ignore[no-untyped-call]
            try:
                await self._converse(call, stop)
            except asyncio.InvalidStateError:  # the master ended the call while we wrote
                raise LinkClosedError(f"{(await call.code()).name}: {await call.details()}"
                                      ) from None

    async def _converse(self, call: grpc.aio.StreamStreamCall, stop: asyncio.Event) -> None:
        await call.write(pb.AgentMessage(hello=self._hello()))
        reader = asyncio.create_task(self._read(call), name="link-reader")
        stopper = asyncio.create_task(_first(stop, self._moved), name="link-stop")
        try:
            while True:
                fresh = asyncio.create_task(self._fresh.wait(), name="link-fresh")
                done, _ = await asyncio.wait(
                    {reader, stopper, fresh}, return_when=asyncio.FIRST_COMPLETED
                )
                if fresh not in done:
                    fresh.cancel()
                if reader in done:
                    reader.result()  # raises the stream's error, if any
                    return
                if stopper in done:
                    await call.done_writing()
                    return
                self._fresh.clear()
                if self._latest is not None:
                    await call.write(pb.AgentMessage(state=self._latest))
        finally:
            for task in (reader, stopper):
                task.cancel()
            call.cancel()

    async def _read(self, call: grpc.aio.StreamStreamCall) -> None:
        async for msg in call:
            kind = msg.WhichOneof("kind")
            if kind == "welcome":
                self.connected = True
                self.last_error = ""
                if self._audit is not None:
                    self._audit.link_ok()
                self._log.info("joined group", term=msg.welcome.term,
                               group=msg.welcome.settings.group)
                self._on_welcome(msg.welcome)
            elif kind == "limits":
                self._on_limits(msg.limits)
