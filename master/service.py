"""`io7-master --config master.toml`: the master of one group, as a daemon.

The imperative shell around `master.control.GroupControl`:

1. A gRPC server (AgentLink, GroupAdmin, health, reflection v1 and v1alpha: see
   master/reflection.py) on the configured address.
   Each agent stream: Hello first (else INVALID_ARGUMENT), checked against the group
   (wrong group, no room: FAILED_PRECONDITION; unknown charger in a closed group:
   PERMISSION_DENIED), then Welcome; AgentStates go to the control core, which judges
   them. A bad stream is closed alone; every other agent carries on.
   Every refused Hello, raised term, rebuild, limit change or refusal, admission, and
   the master's start and stop go to the security log (master/audit.py), served by
   GetSecurityLog. GroupAdmin's methods (status, rebuild, limit, admission, security
   log) are in master/admin.py, a mixin sharing this state.
2. Every cycle (monotonic schedule): poll the CT kit (bounded by the Modbus timeout), run
   the control cycle, queue each connected agent its Limits (latest wins) when they
   changed or their lease is due (master/renewal.py), and tell GetStatus / WatchStatus a
   new status is there: it is built when first asked for (`Master.status`).
3. The term is persisted next to the membership database and incremented at every start,
   so agents can tell this master's Limits from a previous one's. A Hello whose
   `last_seen_term` is at or above it moves it above that (stored first): an agent
   ignores Limits from a term older than the newest it has seen, so a master that lost
   its state folder would otherwise run term 1 and be ignored by every agent.
4. SIGINT/SIGTERM: stop the cycle, stop the server with a grace period, close the bus
   and the database. Agents fall back to their fail-safe current when the lease expires.
5. At debug level every cycle logs one "cycle" line: its number, when the CT sample was
   taken and the Limits queued (monotonic s), how long it took, how many agents were
   sent Limits, and the CT reading and allocation per site phase.
6. Mutual TLS ([tls], master/tlsconfig.py): the server presents this charger's
   certificate and requires a client certificate of the site CA (the handshake refuses
   none, another CA's, an expired one: each a security log `handshake_refused` line, read
   from gRPC core's trace by master/handshaketap.py). Each stream or call is then checked
   against the CRL and the site (master/admin.py rule 5), and a Hello must name the
   certificate's own charger (PERMISSION_DENIED, security log `identity_mismatch`): a
   charger cannot say Hello as another, and no invented id can become a member.
   Plaintext only with `[tls] plaintext = true`, warned at every start and written to the
   security log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hw.errors import DeviceError
from hw.logconfig import configure_logging
from hw.modbus.ctkit import ModbusCtKit
from hw.modbus.transport import ModbusBus
from hw.securitylog import SecurityLog, config_digest
from master import audit, handshaketap, reflection, wire
from master.admin import GroupAdminMixin
from master.config import MasterConfig, load_master_config
from master.control import CycleResult, GroupControl
from master.cyclestats import CycleStats
from master.daemon import (
    check_port_free,
    hold_state_lock,
    next_term,
    state_folder_ready,
    store_term,
)
from master.emsserver import start_ems
from master.errors import ConfigError, PeerError
from master.gctune import tune_for_daemon
from master.membership import MembershipStore
from master.needs import CardHabits
from master.renewal import LimitsLedger
from master.sitelimits import SiteLimits
from master.tlsconfig import PLAINTEXT_WARNING, ServerTls, load_server_tls
from protos.identity import IdentityError, authorise_hello
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.link import MASTER_SERVER_OPTIONS
from protos.tls import server_credentials

SHUTDOWN_GRACE_S = 2.0
log = structlog.get_logger("master")


@dataclass(frozen=True, slots=True)
class Elected:
    """io7d's master (issue 13): its term is the Raft term it leads, not a term file;
    `lease_left_s()` is master.election.lease's valid_for_s now (0: issue nothing);
    `members` are the group's configured members, admitted without `io7ctl admit`."""

    term: int
    lease_left_s: Callable[[], float]
    members: tuple[str, ...]
    first_cycle: int = 0  # above any cycle an earlier master of this term sent (control.py)


class Master(pb_grpc.AgentLinkServicer, GroupAdminMixin):
    """The group's state in one process: control core, membership, streams, status."""

    def __init__(self, config: MasterConfig, *, tls: ServerTls | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 elected: Elected | None = None) -> None:
        self.config = config
        self.tls = tls
        self.clock = clock
        self.elected = elected
        config.state_db.parent.mkdir(parents=True, exist_ok=True)
        self.store = MembershipStore(config.state_db, group=config.group.name,
                                     closed=config.closed)
        if elected is None:
            self.term = next_term(config.state_db)
        else:
            self.term = elected.term
            for cid in elected.members:
                self.store.admit_id(cid, now_wall=datetime.now(UTC))
        self.control = GroupControl(group=config.group_config(), term=self.term,
                                    members=self.store.known(), now_s=clock(),
                                    ct_freeze=None if config.ct is None else config.ct.freeze,
                                    first_cycle=0 if elected is None else elected.first_cycle)
        self.outbox: dict[str, asyncio.Queue[pb.MasterMessage]] = {}
        self.ledger = LimitsLedger(config.cycle_s)  # who is sent Limits (master/renewal.py)
        self.encoder = wire.LimitsEncoder()  # their connectors encoded once per change
        self._status: pb.GroupStatus | None = pb.GroupStatus(
            group=config.group.name, term=self.term, master_id=config.master_id)
        self._last: tuple[CycleResult, float] | None = None  # the last cycle, its ms
        self.status_cycle = 0  # the cycle `status` shows (WatchStatus waits on it)
        self.status_changed = asyncio.Condition()
        self.cycle_ms: list[float] = []
        self.stats = CycleStats()  # for /metrics (master/web/metrics.py)
        self.ct: ModbusCtKit | None = None
        if config.ct is not None:
            self.ct = ModbusCtKit(ModbusBus(config.ct.bus), config.ct.kit_config())
        self.log = log.bind(group=config.group.name, term=self.term)
        self.security = SecurityLog(audit.security_log_path(config.state_db))
        self.site_limits = SiteLimits(security=self.security,  # master/sitelimits.py
                                      local_controller=config.local_controller,
                                      grace_s=config.lease_ms / 1000.0)
        # Cards' habits (issue 12 §3, master/needs.py); no time zone is configured
        # anywhere, so departures are in the system's local time.
        self.habits = CardHabits(config.state_db)

    # --- AgentLink ---------------------------------------------------------------
    async def Connect(self, request_iterator: AsyncIterator[pb.AgentMessage],
                      context: grpc.aio.ServicerContext) -> None:
        identity = await self._authenticate(context)  # before believing a word (rule 6)
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        if first.WhichOneof("kind") != "hello":
            await self._refuse(context, grpc.StatusCode.INVALID_ARGUMENT,
                               audit.Kind.HELLO_INVALID,
                               "the first message on AgentLink.Connect must be Hello")
        hello = first.hello
        try:
            member = wire.member_from_hello(hello)
            seen_term = wire.seen_term(hello)
        except PeerError as err:
            await self._refuse(context, grpc.StatusCode.INVALID_ARGUMENT,
                               audit.Kind.HELLO_INVALID, str(err))
        if identity is not None:
            try:
                authorise_hello(identity, member.charger_id)
            except IdentityError as err:
                await self._refuse(context, grpc.StatusCode.PERMISSION_DENIED,
                                   audit.Kind.IDENTITY_MISMATCH, str(err))
        if member.group != self.config.group.name:
            await self._refuse(
                context, grpc.StatusCode.FAILED_PRECONDITION, audit.Kind.HELLO_WRONG_GROUP,
                f"charger {member.charger_id} belongs to group {member.group!r}; this master "
                f"runs group {self.config.group.name!r}: point it at its own master",
            )
        problem = self.control.check_join(member)
        if problem:
            await self._refuse(context, grpc.StatusCode.FAILED_PRECONDITION,
                               audit.Kind.HELLO_NO_ROOM, problem)
        admitted = self.store.admit(member, now_wall=datetime.now(UTC))
        if not admitted.accepted:
            await self._refuse(context, grpc.StatusCode.PERMISSION_DENIED,
                               audit.Kind.HELLO_NOT_MEMBER, admitted.reason)
        cid = member.charger_id
        if admitted.new:
            audit.record(self.security, audit.Kind.MEMBER_JOINED, context,
                         f"charger {cid} joined group {self.config.group.name!r} as a new "
                         f"member ({'admitted' if self.config.closed else 'open group'})")
        clog = self.log.bind(charger_id=cid, peer=context.peer())
        old = self.outbox.pop(cid, None)
        if old is not None:  # a reconnect before the old stream died: the new one wins
            _end_stream(old)
        box: asyncio.Queue[pb.MasterMessage] = asyncio.Queue(maxsize=4)
        self.outbox[cid] = box
        self.ledger.forget(cid)  # a new stream starts with Limits (renewal rule 3)
        self.control.member_connected(member, self.clock(), address=context.peer())
        self._raise_term(seen_term, cid, context)
        clog.info("agent joined", new=admitted.new, term=self.term)
        await context.write(pb.MasterMessage(welcome=pb.Welcome(
            term=self.term, master_id=self.config.master_id,
            settings=pb.GroupSettings(
                group=self.config.group.name,
                mode=wire.MODE_OUT[self.config.group.mode],
                offline_strategy=wire.STRATEGY_OUT[self.config.group.offline_strategy],
                failsafe_current_a=self.config.group.failsafe_current_a,
                cycle_ms=self.config.cycle_ms, lease_ms=self.config.lease_ms))))
        # The reader is this handler's own task: the handler cancels and awaits it, also
        # when gRPC cancels the handler (the agent dropped the stream), so it is never left
        # pending. When the reader ends it puts the end mark in the outbox, so the loop
        # below waits on the outbox alone: no task and no asyncio.wait per Limits (issue
        # 15: at 1 000 agents they cost the master more than the control cycle did).
        reader = asyncio.create_task(self._read(cid, request_iterator, clog),
                                     name=f"read {cid}")
        reader.add_done_callback(lambda _: _end_stream(box))
        try:
            while True:
                msg = await box.get()
                # replaced, or the agent's side ended (checked apart from the mark too: a
                # full outbox behind a stalled write may have dropped the mark)
                if msg.WhichOneof("kind") is None or reader.done():
                    break
                if self.elected is not None and msg.WhichOneof("kind") == "limits":
                    if not self._recap(msg.limits):
                        self.ledger.forget(cid)  # renewal rule 3: sent again next cycle
                        continue  # waited too long behind a slow stream: the next one is due
                    self.ledger.shortened(cid, self.clock() + msg.limits.valid_for_ms / 1000)
                await context.write(msg)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if self.outbox.get(cid) is box:
                del self.outbox[cid]
                self.encoder.forget(cid)
                self.control.member_disconnected(cid, self.clock())
                clog.info("agent left")
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(reader.exception()))

    def _recap(self, limits: pb.Limits) -> bool:
        """An elected master's Limits that waited in the outbox (a stalled stream) leave
        with what is left of their lease and of the leader lease (election/lease.py rule
        3: no lease outlives its confirmation); False: under the agents' 1 s minimum, or
        older than one cycle: drop it, a fresher one follows."""
        assert self.elected is not None
        age_ms = int(self.clock() * 1000) - limits.issued_at_ms
        left_ms = min(limits.valid_for_ms - age_ms, int(self.elected.lease_left_s() * 1000))
        if age_ms > self.config.cycle_ms or left_ms < 1000:
            return False
        limits.valid_for_ms = left_ms
        return True

    def _raise_term(self, seen_term: int, cid: str,
                    context: grpc.aio.ServicerContext | None = None) -> None:
        """Rule 3: an admitted agent has seen a term above ours, or ours before we issued
        it (this master lost its term file, or another master ran the group): move above
        it, stored before any Limits carry it; the control core holds at fail-safe again
        (control rule 4, `needs_raise`)."""
        if self.elected is not None:
            # The Raft term is the fence: never step outside it. An agent that saw a later
            # term ignores us until a later election (io7d raises its Raft term to its own
            # agent's at start; every member lost its Raft journal?).
            if seen_term > self.term:
                self.log.error("agent has seen a term above this elected master's: it will "
                               "not obey this master", charger_id=cid, seen_term=seen_term)
            return
        if self.control.needs_raise(seen_term):
            store_term(self.config.state_db, seen_term + 1)
        old = self.term
        new = self.control.raise_term(seen_term, self.clock())  # the Welcome follows
        if new is None:
            return
        self.term = new
        audit.record(self.security, audit.Kind.TERM_RAISED, context,
                     f"term {old} -> {self.term}: charger {cid}'s Hello said last_seen_term "
                     f"{seen_term}")
        self.log = log.bind(group=self.config.group.name, term=self.term)
        self.log.warning("term raised above an agent's", charger_id=cid, seen_term=seen_term)

    async def _read(self, cid: str, requests: AsyncIterator[pb.AgentMessage],
                    clog: structlog.stdlib.BoundLogger) -> None:
        decoder = wire.ReportDecoder()  # decodes what changed (control rule 7)
        async for msg in requests:
            if msg.WhichOneof("kind") != "state":
                raise PeerError(peer=cid, problem="only AgentState may follow Hello")
            if msg.state.charger_id != cid:
                raise PeerError(peer=cid, problem=f"state for {msg.state.charger_id!r} on "
                                                  f"{cid!r}'s stream")
            problem = self.control.report(decoder.decode(msg.state, self.clock()))
            self.site_limits.from_agent(cid, msg.state)
            if problem:
                clog.warning("report refused: member offline until a valid one", why=problem)

    # --- the cycle -----------------------------------------------------------------
    async def poll_ct(self) -> float | None:
        """Read the CT kit into the control core. Returns the monotonic time the good
        sample was taken (when the read returned), None when there is no kit or the read
        failed or was refused."""
        if self.ct is None or self.config.ct is None:
            return None
        try:
            readings = await self.ct.read_clamps()
        except DeviceError as err:
            self.stats.ct_error()
            self.control.ct_failed(f"meter read timeout: {err}", self.clock())
            return None
        sampled_at = self.clock()
        problem = self.control.ct_sample(self.config.ct.site_currents(readings), sampled_at)
        if problem:
            self.stats.ct_error()
            self.control.ct_failed(problem, sampled_at)
            return None
        return sampled_at

    async def run_cycle(self) -> CycleResult:
        t0 = self.clock()
        ct_sampled_at = await self.poll_ct()
        external, now_unix_s = self.site_limits.now()
        now_s = self.clock()
        result = self.control.cycle(now_s, external, now_unix_s,
                                    needs=self.habits.needs(now_unix_s))
        issued_at = self.clock()
        issued = int(issued_at * 1000)
        sent = 0
        lease_ms = result.lease_ms
        if self.elected is not None:  # master.election.lease rules 3-4
            lease_ms = min(lease_ms, int(self.elected.lease_left_s() * 1000))
        ledger, term, failsafe_a = self.ledger, result.term, result.failsafe_current_a
        for cid, limits in result.limits.items() if lease_ms > 0 else ():
            box = self.outbox.get(cid)
            if box is None or not ledger.due(cid, term=term, failsafe_a=failsafe_a,
                                             limits=limits, now_s=issued_at):
                continue  # unchanged, and its lease is not due (master/renewal.py)
            if box.full():  # latest wins: drop the oldest unsent Limits
                box.get_nowait()
            box.put_nowait(self.encoder.message(cid, result, limits, issued, lease_ms=lease_ms))
            ledger.queued(cid, term=term, failsafe_a=failsafe_a, limits=limits,
                          now_s=issued_at, lease_s=lease_ms / 1000)
            sent += 1
        # after the Limits are queued: the sessions' bookkeeping is not on the CT-to-agent path
        self.habits.update(((m.member.charger_id, m.online, m.reports)
                            for m in result.facts.members), now_s=now_s, now_unix_s=now_unix_s)
        took_ms = (self.clock() - t0) * 1000
        # Rule 5: one line per cycle at debug level. Times are this host's monotonic
        # clock (CLOCK_MONOTONIC, shared by every process on the host), so a local tool
        # can time the path from the CT sample to the agents (tests/bench/cluster.py).
        if self.log.is_enabled_for(logging.DEBUG):  # its values may build the status view
            self.log.debug("cycle", cycle=result.cycle, ct_sampled_at_s=ct_sampled_at,
                           issued_at_s=issued_at, took_ms=round(took_ms, 3), limits_sent=sent,
                           ct_a=_ct_a(result), allocated_a=_allocated_a(result))
        self.cycle_ms.append(took_ms)
        self.stats.cycle(took_ms / 1000.0)
        del self.cycle_ms[:-100]
        async with self.status_changed:  # the status is built when someone asks
            self._last, self._status, self.status_cycle = (result, took_ms), None, result.cycle
            self.status_changed.notify_all()
        return result

    @property
    def status(self) -> pb.GroupStatus:
        """The last cycle's GroupStatus, built on the first ask after that cycle (GetStatus,
        WatchStatus, the web UI, /metrics, MQTT) and kept until the next: a cycle nobody
        looks at costs nothing here."""
        if self._status is None:
            assert self._last is not None
            result, took_ms = self._last
            self._status = wire.group_status(result.status, master_id=self.config.master_id,
                                             cycle_duration_ms=took_ms)
        return self._status

    @status.setter
    def status(self, status: pb.GroupStatus) -> None:
        self._status, self.status_cycle = status, status.cycle

    async def cycle_forever(self, stop: asyncio.Event) -> None:
        period = self.config.cycle_s
        next_at = self.clock()
        while not stop.is_set():
            await self.run_cycle()
            next_at += period
            delay = next_at - self.clock()
            if delay < 0:  # overran: skip the missed ticks rather than burst
                self.log.warning("cycle overran", late_s=-delay)
                next_at = self.clock()
                delay = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    def close(self) -> None:
        if self.ct is not None:
            self.ct.bus.close()
        self.store.close()
        self.habits.close()
        self.security.close()


def _end_stream(box: asyncio.Queue[pb.MasterMessage]) -> None:
    """Tell a stream's handler to end: the end mark (a MasterMessage with nothing set) goes
    in its outbox, in place of the oldest unsent Limits when it is full."""
    if box.full():
        box.get_nowait()
    box.put_nowait(pb.MasterMessage())


def _ct_a(result: CycleResult) -> list[float | None]:
    """The CT reading per site phase of the cycle's allocation, for the debug line."""
    alloc = result.allocation
    if alloc is None:
        return [p.ct_a for p in result.status.phases]
    return [p.ct_a for p in alloc.phases]


def _allocated_a(result: CycleResult) -> list[float]:
    alloc = result.allocation
    if alloc is None or result.holding:  # what was sent, as the status shows it
        return [p.allocated_a for p in result.status.phases]
    return [p.allocated_a for p in alloc.phases]


async def serve(config: MasterConfig, *, stop: asyncio.Event, listen: str | None = None,
                ready: Callable[[str], None] | None = None,
                handshakes: handshaketap.HandshakeTap | None = None,
                elected: Elected | None = None,
                on_master: Callable[[Master | None], None] | None = None) -> None:
    """Run the master until `stop` is set. Raises ConfigError, before serving anything,
    when another master holds this state or the address is taken (master/daemon.py).
    `elected`: io7d's master of one Raft term (Elected). `on_master`: told the Master
    once it exists and None when it ends (io7d's web interfaces read it)."""
    address = listen or config.listen
    with contextlib.ExitStack() as held:
        held.enter_context(hold_state_lock(config.state_db, config_file=config.file))
        key = "--listen" if listen else "master.listen"
        check_port_free(address, config_file=config.file, key=key)
        tls = None
        if config.tls is not None:  # rule 6: the files are checked before anything serves
            tls, expiry = load_server_tls(config.tls, file=config.file, now=datetime.now(UTC))
            if expiry:
                log.error("this master's certificate is not valid now: every peer will "
                          "refuse it", problem=expiry, cert=str(config.tls.dir / "cert.pem"))
        server = grpc.aio.server(options=MASTER_SERVER_OPTIONS)
        try:
            port = (server.add_insecure_port(address) if tls is None else
                    server.add_secure_port(address, server_credentials(tls.material)))
        except RuntimeError as exc:  # taken between the probe and the bind, or refused
            raise ConfigError(file=config.file, key=key, problem=f"cannot listen on "
                              f"{address}: {exc}".split(";")[0]) from None
        master = Master(config, tls=tls, elected=elected)
        held.callback(master.close)
        if on_master is not None:
            on_master(master)
            held.callback(on_master, None)
        if handshakes is not None:  # rule 6: refused handshakes, from here to the close
            handshakes.record_to(master.security, log=master.log)
            held.callback(handshakes.record_to, None)
        ems = await start_ems(config.ems, file=config.file, site=master.site_limits,
                              installed_limit_a=master.control.installed_limit_a,
                              status=lambda: master.status)
        try:
            await _serve(master, server, f"{address.rsplit(':', 1)[0]}:{port}", stop, ready)
        finally:
            if ems is not None:
                await ems.stop()


async def _serve(master: Master, server: grpc.aio.Server, bound: str, stop: asyncio.Event,
                 ready: Callable[[str], None] | None) -> None:
    pb_grpc.add_AgentLinkServicer_to_server(master, server)  # type: ignore[no-untyped-call]
    pb_grpc.add_GroupAdminServicer_to_server(master, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [pb.DESCRIPTOR.services_by_name[n].full_name for n in ("AgentLink", "GroupAdmin")]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME], server)  # v1 + v1alpha
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    master.log.info("master listening", address=bound, members=len(master.store.known()),
                    tls="off" if master.tls is None else str(master.tls.material.identity))
    config = master.config
    if master.tls is None:
        master.log.warning("PLAINTEXT: no TLS", why=PLAINTEXT_WARNING)
        audit.record(master.security, audit.Kind.PLAINTEXT, None, PLAINTEXT_WARNING)
    audit.record(master.security, audit.Kind.CONFIG_LOADED, None,
                 f"{config.file}: sha256 {config_digest(config.file)}")
    audit.record(master.security, audit.Kind.MASTER_STARTED, None,
                 f"term {master.term}, group {config.group.name!r}, listening on {bound} "
                 f"{'in PLAINTEXT' if master.tls is None else 'with mutual TLS as '}"
                 f"{'' if master.tls is None else master.tls.material.identity}, "
                 f"membership {'closed' if config.closed else 'open'}, installed limit "
                 f"{master.control.installed_limit_a:g} A per phase")
    if ready is not None:
        ready(bound)
    try:
        await master.cycle_forever(stop)
    finally:
        await health_servicer.enter_graceful_shutdown()
        await server.stop(SHUTDOWN_GRACE_S)
        master.log.info("master stopped")
        audit.record(master.security, audit.Kind.MASTER_STOPPED, None,
                     f"term {master.term}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7-master", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="master.toml")
    ap.add_argument("--listen", help="override [master] listen, e.g. 127.0.0.1:0")
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    try:
        config = load_master_config(args.config)
        state_folder_ready(config.state_db, config_file=config.file)
    except ConfigError as err:
        print(f"io7-master: {err}", file=sys.stderr)
        return 2
    tap = handshaketap.start(reexec=argv is None) if config.tls is not None else None
    configure_logging(args.log_level, stream=sys.stderr)  # after the tap: its sys.stderr

    def ready(address: str) -> None:
        print(json.dumps({"listening": address}), flush=True)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(config, stop=stop, listen=args.listen, ready=ready, handshakes=tap)

    tune_for_daemon()  # master/gctune.py

    try:
        asyncio.run(until_signalled())
    except ConfigError as err:  # another master holds the state or the port
        print(f"io7-master: {err}", file=sys.stderr)
        return 2
    finally:
        if tap is not None:
            tap.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
