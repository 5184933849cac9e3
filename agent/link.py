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
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import grpc
import structlog

from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.link import AGENT_CHANNEL_OPTIONS

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 2.0


class LinkClosedError(Exception):
    """The master closed the stream; the message is its status code and details."""


class MasterLink:
    """Keeps one AgentLink.Connect stream to `address` ("host:port") open."""

    def __init__(
        self,
        address: str,
        hello: Callable[[], pb.Hello],
        on_welcome: Callable[[pb.Welcome], None],
        on_limits: Callable[[pb.Limits], None],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._address = address
        self._hello = hello
        self._on_welcome = on_welcome
        self._on_limits = on_limits
        self._latest: pb.AgentState | None = None
        self._fresh = asyncio.Event()
        self._rng = rng or random.Random()
        self.connected = False
        self.last_error = ""
        self._log = structlog.get_logger("agent.link").bind(master=address)

    def publish(self, state: pb.AgentState) -> None:
        """Send `state` as soon as the stream can; replaces any unsent one."""
        self._latest = state
        self._fresh.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Connect and reconnect until `stop` is set."""
        backoff = BACKOFF_START_S
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = BACKOFF_START_S
            except grpc.aio.AioRpcError as err:
                self.last_error = f"{err.code().name}: {err.details()}"
                self._log.warning("master link lost", error=self.last_error)
            except (LinkClosedError, ConnectionError, OSError) as err:
                self.last_error = str(err)
                self._log.warning("master link lost", error=self.last_error)
            finally:
                self.connected = False
            delay = backoff * (0.5 + self._rng.random())
            backoff = min(BACKOFF_MAX_S, backoff * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _session(self, stop: asyncio.Event) -> None:
        async with grpc.aio.insecure_channel(self._address, options=AGENT_CHANNEL_OPTIONS) as ch:
            call = pb_grpc.AgentLinkStub(ch).Connect()  # type: ignore[no-untyped-call]
            try:
                await self._converse(call, stop)
            except asyncio.InvalidStateError:  # the master ended the call while we wrote
                raise LinkClosedError(f"{(await call.code()).name}: {await call.details()}"
                                      ) from None

    async def _converse(self, call: grpc.aio.StreamStreamCall, stop: asyncio.Event) -> None:
        await call.write(pb.AgentMessage(hello=self._hello()))
        reader = asyncio.create_task(self._read(call), name="link-reader")
        stopper = asyncio.create_task(stop.wait(), name="link-stop")
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
                self._log.info("joined group", term=msg.welcome.term,
                               group=msg.welcome.settings.group)
                self._on_welcome(msg.welcome)
            elif kind == "limits":
                self._on_limits(msg.limits)
