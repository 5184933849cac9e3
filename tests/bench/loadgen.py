"""Many chargers from one process: the load generator of the cluster benchmark.

Each `FakeCharger` speaks AgentLink at the protocol level, over its own gRPC channel (its
own TCP connection, as a charger on the LAN has one), with the agent's channel options:

1. Hello first: two three-phase connectors (the second wired with rotated phases, as the
   e2e agents are), 32 A hard max each, Charger Current Limit 32 A.
2. Then an AgentState every cycle, on its own schedule at its own phase within the cycle
   (charger k starts k/N of a cycle late), so the master sees reports arrive spread over
   the cycle as from real chargers, not in one burst. Sequence numbers increase by 1.
3. The EV on each connector draws what the last Limits allowed, 0.3 A under it (EVs draw
   a little under the pilot offer; well within the 1 A that would trigger the demand
   cap), and nothing below 6 A; the meter's energy register grows with that draw.
4. Every Limits is stamped with `time.monotonic()` as the first thing on arrival and kept
   per cycle (`received[cycle][charger_id]`). CLOCK_MONOTONIC is system-wide on Linux, so
   these stamps compare with the master's own (its "cycle" debug log line).
6. Over mutual TLS when `credentials` is given (the e2e session's PKI: one charger
   certificate per FakeCharger, issued on first use), as agents run since issue 11;
   None: plaintext, for a master with [tls] plaintext = true.
5. A stream that fails is not reconnected: its error is kept in `errors`, so a benchmark
   reports it rather than hiding it. With `reconnect=True` (the handshake storm after a
   master restart) a charger reconnects as the agent does (agent/link.py rule 3: a fresh
   channel after a jittered backoff from 0.2 s doubling to 2 s), and the first Welcome
   and the first Limits of every term are stamped per charger (`firsts`).
7. Every channel has its own subchannel pool, hence its own TCP connection (and TLS
   handshake): grpcio otherwise shares one connection among channels of equal options,
   so 500 plaintext chargers would be one connection and no fair comparison.
8. A generator may own a share of a larger fleet (tests/bench/fleet.py splits one over
   processes): its chargers are numbered from `first`, and their offsets spread over
   the whole fleet (`spread` chargers), as if one process served them all.
9. The event loop's lag is sampled every LAG_TICK_S (`lag`: monotonic s, ms late): a
   loop that lags stamps receipts late, and then the generator, not the master, is
   what the figures measure.

The receive stamps include this process's own time to serve N streams on one event loop:
with hundreds of chargers they are an upper bound on what one real agent would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from agent.link import BACKOFF_MAX_S, BACKOFF_START_S
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.link import AGENT_CHANNEL_OPTIONS
from protos.tls import channel_options

TLS_SITE = "e2e"  # tests/e2e/harness.py SITE: the session PKI's site
HARD_MAX_A = 32.0  # an io7 socket's cable/breaker rating (product.md ch. 2)
CHARGER_LIMIT_A = 32.0  # Charger Current Limit, manual 6.3
EV_UNDERDRAW_A = 0.3  # an EV draws a little under the offer (rule 3)
MIN_CURRENT_A = 6.0  # IEC 61851-1: no offer between 0 and 6 A
VOLTAGE_V = 230.0
LAG_TICK_S = 0.1  # rule 9: ten samples a second, well under the 1 s cycle
# Rule 7: one connection per charger, as on the LAN.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
# Connector line -> site phase: connector 1 straight, connector 2 rotated (L2, L3, L1).
WIRINGS = {1: (pb.PHASE_L1, pb.PHASE_L2, pb.PHASE_L3),
           2: (pb.PHASE_L2, pb.PHASE_L3, pb.PHASE_L1)}


class StreamEndedError(Exception):
    """The master ended a charger's stream without an error status."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One Limits as one charger received it: when (monotonic s), per connector id the
    current it may offer (A), and whether it is the fail-safe of a start-of-term hold."""

    at_s: float
    currents_a: dict[int, float]
    failsafe: bool


@dataclass
class FakeCharger:
    """One charger at the protocol level; its EVs follow the Limits (rules 1-3)."""

    charger_id: str
    group: str
    seq: int = 0
    energy_wh: float = 0.0
    last: pb.Limits | None = None
    last_at_s: float = 0.0
    welcome: pb.Welcome | None = None

    def hello(self) -> pb.Hello:
        return pb.Hello(
            charger_id=self.charger_id, group=self.group, software_version="bench loadgen",
            charger_current_limit_a=CHARGER_LIMIT_A,
            connectors=[pb.ConnectorInfo(
                connector_id=cid, hard_max_current_a=HARD_MAX_A,
                wiring=pb.ConnectorWiring(l1=w[0], l2=w[1], l3=w[2]))
                for cid, w in WIRINGS.items()])

    def offered_a(self, connector_id: int) -> float:
        if self.last is None:
            return 0.0
        return next((c.current_a for c in self.last.connectors
                     if c.connector_id == connector_id), 0.0)

    def state(self, now_s: float, period_s: float) -> pb.AgentState:
        """The next AgentState (rule 2), advancing the energy registers by one period."""
        self.seq += 1
        lease_ok = self.last is not None and \
            now_s - self.last_at_s < self.last.valid_for_ms / 1000.0
        msg = pb.AgentState(charger_id=self.charger_id, sequence=self.seq,
                            monotonic_ms=int(now_s * 1000), lease_ok=lease_ok)
        if self.last is not None:
            msg.term_applied, msg.cycle_applied = self.last.term, self.last.cycle
        for cid in WIRINGS:
            offered = self.offered_a(cid)
            draw = max(0.0, offered - EV_UNDERDRAW_A) if offered >= MIN_CURRENT_A else 0.0
            self.energy_wh += 3 * VOLTAGE_V * draw * period_s / 3600.0
            charging = draw > 0.0
            msg.connectors.add(
                connector_id=cid,
                pilot_state=pb.PILOT_STATE_C if charging else pb.PILOT_STATE_B,
                status=pb.CONNECTOR_STATUS_CHARGING if charging
                else pb.CONNECTOR_STATUS_SUSPENDED_EVSE,
                error_code="NoError",
                current_a=pb.LineValues(l1=draw, l2=draw, l3=draw),
                voltage_v=pb.LineValues(l1=VOLTAGE_V, l2=VOLTAGE_V, l3=VOLTAGE_V),
                active_power_w=3 * VOLTAGE_V * draw, energy_import_wh=self.energy_wh,
                session_energy_wh=self.energy_wh, phases_in_use=0b111 if charging else 0,
                offered_current_a=offered, max_current_a=HARD_MAX_A, wants_power=True,
                meter_ok=True)
        return msg


@dataclass
class LoadGenerator:
    """`chargers` FakeChargers on one event loop against the master at `address`."""

    address: str
    chargers: int
    group: str
    cycle_s: float = 1.0
    prefix: str = "bench"
    credentials: Callable[[str], grpc.ChannelCredentials] | None = None  # rule 6
    reconnect: bool = False  # rule 5
    seed: int = 5  # the reconnect jitter's
    first: int = 0  # rule 8: the number of this share's first charger
    spread: int = 0  # rule 8: the whole fleet's size (0: this generator's `chargers`)
    fleet: list[FakeCharger] = field(init=False)
    received: dict[int, dict[str, Arrival]] = field(init=False, default_factory=dict)
    errors: dict[str, str] = field(init=False, default_factory=dict)
    # term -> charger id -> monotonic s of its first Welcome / Limits of that term (rule 5)
    firsts: dict[str, dict[int, dict[str, float]]] = field(
        init=False, default_factory=lambda: {"welcome": {}, "limits": {}})
    attempts: int = field(init=False, default=0)  # streams opened, reconnects included
    lag: list[tuple[float, float]] = field(init=False, default_factory=list)  # rule 9

    def __post_init__(self) -> None:
        if self.chargers < 1:
            raise ValueError(f"chargers={self.chargers}: need at least one")
        if not self.cycle_s > 0:
            raise ValueError(f"cycle_s={self.cycle_s}: must be > 0")
        if self.first < 0 or self.spread < 0:
            raise ValueError(f"first={self.first}, spread={self.spread}: must be >= 0")
        self.fleet = [FakeCharger(f"{self.prefix}-{self.first + k:04d}", self.group)
                      for k in range(self.chargers)]
        self._rng = random.Random(self.seed)

    @property
    def welcomed(self) -> int:
        """How many chargers have their Welcome."""
        return sum(1 for c in self.fleet if c.welcome is not None)

    def complete_cycles(self) -> list[int]:
        """Cycles whose Limits reached every charger, in order."""
        return sorted(k for k, got in self.received.items() if len(got) == self.chargers)

    async def run(self, stop: asyncio.Event) -> None:
        """Open every charger's stream and keep it until `stop` is set."""
        spread = self.spread or self.chargers
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._watch_lag(stop), name="loop lag")
            for k, charger in enumerate(self.fleet):
                offset_s = (self.first + k) % spread * self.cycle_s / spread
                tg.create_task(self._session(charger, offset_s, stop),
                               name=charger.charger_id)

    async def _watch_lag(self, stop: asyncio.Event) -> None:
        """Rule 9: how late a LAG_TICK_S sleep wakes, until `stop`."""
        while not stop.is_set():
            due = time.monotonic() + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            now = time.monotonic()
            self.lag.append((now, max(0.0, now - due) * 1000.0))

    async def wait_welcomed(self, timeout_s: float) -> None:
        """Wait until every charger has its Welcome; raises TimeoutError saying how many
        have, or RuntimeError when a stream failed."""
        deadline = time.monotonic() + timeout_s
        while self.welcomed < self.chargers:
            if self.errors:
                cid, err = next(iter(self.errors.items()))
                raise RuntimeError(f"{len(self.errors)} streams failed, e.g. {cid}: {err}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.welcomed} of {self.chargers} chargers welcomed "
                                   f"in {timeout_s} s")
            await asyncio.sleep(0.05)

    async def _session(self, charger: FakeCharger, offset_s: float,
                       stop: asyncio.Event) -> None:
        backoff = BACKOFF_START_S
        while True:
            await self._stream(charger, offset_s, stop)
            if not self.reconnect or stop.is_set():
                return
            delay = backoff * (0.5 + self._rng.random())  # agent/link.py rule 3
            backoff = min(BACKOFF_MAX_S, backoff * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return
            self.errors.pop(charger.charger_id, None)

    async def _stream(self, charger: FakeCharger, offset_s: float,
                      stop: asyncio.Event) -> None:
        """One stream, until `stop` or its failure (kept in `errors`)."""
        self.attempts += 1
        try:
            if self.credentials is None:
                channel = grpc.aio.insecure_channel(
                    self.address, options=[*AGENT_CHANNEL_OPTIONS, *OWN_CONNECTION])
            else:
                channel = grpc.aio.secure_channel(
                    self.address, self.credentials(charger.charger_id),
                    options=[*AGENT_CHANNEL_OPTIONS, *OWN_CONNECTION,
                             *channel_options(TLS_SITE)])
            async with channel:
                call = pb_grpc.AgentLinkStub(channel).Connect()  # type: ignore[no-untyped-call]
                await call.write(pb.AgentMessage(hello=charger.hello()))
                reader = asyncio.create_task(self._read(charger, call))
                try:
                    await self._write(charger, call, offset_s, stop, reader)
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
                    call.cancel()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, OSError,
                StreamEndedError) as err:
            self.errors[charger.charger_id] = repr(err)

    async def _write(self, charger: FakeCharger, call: grpc.aio.StreamStreamCall,
                     offset_s: float, stop: asyncio.Event, reader: asyncio.Task[None]) -> None:
        next_at = time.monotonic() + offset_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_at - time.monotonic()))
            if stop.is_set():
                break
            if reader.done():
                reader.result()  # the stream's error, if any
                raise StreamEndedError("the master ended the stream")
            await call.write(pb.AgentMessage(state=charger.state(time.monotonic(),
                                                                 self.cycle_s)))
            next_at += self.cycle_s

    async def _read(self, charger: FakeCharger, call: grpc.aio.StreamStreamCall) -> None:
        while True:
            msg = await call.read()
            now = time.monotonic()  # rule 4: first thing
            if msg is grpc.aio.EOF:
                return
            kind = msg.WhichOneof("kind")
            if kind == "welcome":
                charger.welcome = msg.welcome
                self.firsts["welcome"].setdefault(msg.welcome.term, {}).setdefault(
                    charger.charger_id, now)
            elif kind == "limits":
                charger.last, charger.last_at_s = msg.limits, now
                self.firsts["limits"].setdefault(msg.limits.term, {}).setdefault(
                    charger.charger_id, now)
                self.received.setdefault(msg.limits.cycle, {})[charger.charger_id] = Arrival(
                    now, {c.connector_id: c.current_a for c in msg.limits.connectors},
                    any(c.reason == pb.LIMIT_REASON_FAILSAFE for c in msg.limits.connectors))
