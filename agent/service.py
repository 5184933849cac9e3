"""`io7-agent --config agent.toml`: the agent of one charger, as a daemon.

The imperative shell around the agent's pure cores:

1. Every step (250 ms): read each socket's pilot, contactor feedback, meter and residual
   current from the board; ask the limit applier (agent/limits.py) what to offer; step
   the connector state machine (agent/connector.py); carry out its actions (PWM,
   contactor) and show its LED; publish the charger's state to the master.
2. With a master: Welcome and Limits from AgentLink (translated by agent/wire.py, which
   also builds the Hello and each step's AgentState) go to the applier, which obeys only
   the highest term, holds the lease and falls back to the fail-safe current by itself. It
   refuses a fail-safe current or lease outside this agent's own bounds ([master]
   max_failsafe_a, min/max_lease_s); each new refusal is a warning with the master's id,
   the value and the bound, and AgentState carries the reason while it lasts.
3. Agent-only mode (scenario A, manual 6.4.1): no master; each second the agent runs
   `master.allocation` in-process for its own connectors against its Site Limit (and
   its own CT clamps when configured) and feeds the result to the same applier
   (agent/agentonly.py).
4. A dead meter is a fault (meter read timeout), never 0 A. SIGINT/SIGTERM: stop the PWM,
   open the contactors, then exit.
5. With [ocpp] (or --csms-url): an OCPP 1.6J charge point (agent/ocpp/connection.py) runs
   beside the step; the step only hands it the connectors' status (no await), and takes
   from it the availability (ChangeAvailability, persisted) and a hard Reset's request to
   clear latched faults, applied at the start of the next step.
6. With [ocpp], authorisation, transactions and smart charging (agent/ocpp/sessions.py):
   each step reads the RFID reader, asks the sessions what each connector may do (the
   machine's `authorised` and `postponed` inputs, the applier's local limit and charger
   cap, the LED), steps the machines, then hands the sessions the result (transaction
   messages go to the durable outbox). The master sees min(hard max, composite limit)
   as the connector's maximum. SIGTERM stops running transactions (Reboot) first.
7. Every charger keeps a security log (agent/audit.py, `<state.dir>/security.jsonl`),
   open for the agent's life: the master link and the OCPP link write into it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from agent import wire
from agent.agentonly import AGENT_ONLY_CYCLE_S, LocalBalancer
from agent.audit import AgentAudit
from agent.bounds import Refusal
from agent.config import AgentConfig, load_agent_config, with_csms_url
from agent.connector import ActionKind, Connector, ConnectorInputs, ConnectorOutput
from agent.errors import ConfigError
from agent.faults import Fault, OcppStatus
from agent.limits import LimitApplier
from agent.linktls import link_tls
from agent.ocpp.agentport import build_ocpp
from agent.ocpp.availability import Availability
from agent.ocpp.connection import LinkState, OcppClient
from agent.ocpp.reports import StatusReport
from agent.ocpp.sessions import OcppSessions, Prepared
from agent.ocpp.stationlimit import station_limit
from agent.ocpp.transactions import Observed, StopReason
from agent.simdriver import EvDriver
from agent.termstore import TermKeeper
from agent.transitions import DEMAND_STATES, State
from hw.capabilities import RCD_AC_TRIP_MA, RCD_DC_TRIP_MA, MeterReading
from hw.errors import DeviceError
from hw.logconfig import configure_logging
from hw.pilot import PilotReading, PilotState
from hw.sim.board import SimChargerBoard, SimConnector
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.tls import TlsMaterial

STEP_S = 0.25
SHUTDOWN_FLUSH_S = 3.0  # team choice: SIGTERM waits this long for the CSMS to hear the stops
log = structlog.get_logger("agent")

if TYPE_CHECKING:
    from agent.link import MasterLink


class Agent:
    """One charger: board, state machines, limit applier, link."""

    def __init__(self, config: AgentConfig, *, clock: Callable[[], float] = time.monotonic,
                 master_address: str | Callable[[], str | None] | None = None,
                 tls: TlsMaterial | None = None) -> None:
        self.config = config
        self.clock = clock
        self.log = log.bind(charger_id=config.charger_id)
        self.board = SimChargerBoard(name=config.charger_id)
        self.sockets = {c.connector_id: SimConnector(clock, name=f"socket {c.connector_id}")
                        for c in config.connectors}
        self.machines = {cid: Connector(cid) for cid in self.sockets}
        self.outputs: dict[int, ConnectorOutput] = {}
        self.meters: dict[int, MeterReading | None] = {}
        self.pilots: dict[int, PilotState] = {}
        self.last_offer: dict[int, tuple[float, object, bool]] = {}
        self.session_start_wh: dict[int, float] = {}
        self.lines_seen: dict[int, int] = {}  # per connector, this session (wire.session_lines)
        self.tag_key = wire.tag_key(config.group, _site_ca(config.tls_dir))
        # Agent-only mode has no master and so no term to keep.
        self.terms = TermKeeper(None if (master_address or config.master_address) is None
                                else config.state_dir, self.log)
        self.applier = LimitApplier(list(self.sockets), config.charger_limit_a,
                                    config.hard_max_a,
                                    initial_failsafe_a=config.initial_failsafe_a,
                                    bounds=config.link_bounds,
                                    last_seen_term=self.terms.load())
        self.master_id = ""  # from the last Welcome, for the logs
        self.logged_refusal = ""  # the reason last warned about
        self.address, self.tls = master_address or config.master_address, tls
        # The security log (agent/audit.py), for the agent's whole life: ConfigError if not.
        self.audit = AgentAudit(charger_id=config.charger_id, config_file=config.file,
                                state_dir=config.state_dir, clock=clock)
        self.link: MasterLink | None = None
        if self.address is not None:  # gRPC is loaded only by a charger with a master
            from agent.link import MasterLink  # noqa: PLC0415

            self.link = MasterLink(self.address, self.hello, self.on_welcome,
                                   self.on_limits, tls=tls, audit=self.audit)
        self.evs = EvDriver(self.sockets, mode=config.sim_evs, seed=config.sim_seed or 0,
                            clock=clock)
        self.seq = 0
        self.local = LocalBalancer(config, self.log)  # used only without a master
        self.ocpp: OcppClient | None = None
        self.sessions: OcppSessions | None = None
        self.max_current_a: dict[int, float] = {}  # min(hard max, OCPP composite limit)
        self.ocpp_stop = asyncio.Event()  # the OCPP link outlives the step at shutdown
        self.availability: Availability | None = None
        self.hard_reset_requested = False
        self.ocpp_db: sqlite3.Connection | None = None
        if config.ocpp is not None:  # ConfigError if the state folder cannot hold it
            side = build_ocpp(self, config.ocpp, security_log=self.audit.log)
            self.ocpp_db, self.availability = side.db, side.availability
            self.sessions, self.ocpp = side.sessions, side.client

    # --- link callbacks ------------------------------------------------------------
    def hello(self) -> pb.Hello:
        return wire.hello(self.config, self.applier.last_seen_term)

    def on_welcome(self, welcome: pb.Welcome) -> None:
        self.master_id = welcome.master_id
        settings = welcome.settings
        if not self.applier.on_welcome(term=welcome.term,
                                       failsafe_a=settings.failsafe_current_a,
                                       lease_s=settings.lease_ms / 1000.0):
            self.logged_refusal = ""  # every refused Welcome is logged
            self.report_refusal("welcome", welcome.term)
            return
        self.obeyed()

    def on_limits(self, limits: pb.Limits) -> None:
        try:
            obeyed = self.applier.on_limits(wire.master_limits(limits), self.clock())
        except ValueError as err:  # InvalidLimitsError too: the message changed nothing
            self.applier.refuse(Refusal(field="limits", value=float(limits.cycle),
                                        reason=f"limits not valid: {err}"))
            obeyed = False
        if obeyed:
            self.logged_refusal = ""
            self.obeyed()
        else:
            self.report_refusal("limits", limits.term)

    def obeyed(self) -> None:
        self.terms.keep(self.applier.last_seen_term)
        self.audit.obeyed(master_id=self.master_id, term=self.applier.last_seen_term)

    def report_refusal(self, what: str, term: int) -> None:
        """Warn once per new refusal (Limits come every cycle); AgentState repeats it.
        The security log gets each reason once until a message is obeyed again."""
        refusal = self.applier.refusal
        if refusal is not None:
            self.audit.settings_refused(what, master_id=self.master_id, term=term,
                                        refusal=refusal)
        if refusal is None or refusal.reason == self.logged_refusal:
            return  # stale cycle, or already said
        self.logged_refusal = refusal.reason
        self.log.warning(f"{what} refused", master_id=self.master_id, term=term,
                         field=refusal.field, value=refusal.value, bound=refusal.bound,
                         why=refusal.reason)

    def set_charger_limit(self, amps: float) -> None:
        """The Charger Current Limit changed while running (the web UI, issue 14): the
        applier caps the next step's offers (a decrease at once, an increase paced), and
        the master hears it in the next AgentState (`charger_current_limit_a`). Not by
        reopening the stream: the master would count this charger offline until its next
        report, and Zero or Minimise would then cut the whole group. ValueError outside
        6-63 A, nothing changed. The OCPP profiles keep the start's limit as their
        ceiling, and the applier takes the lower of the two."""
        self.applier.set_charger_limit(amps)
        self.config = replace(self.config, charger_limit_a=float(amps))
        self.local.config = self.config

    # --- the step --------------------------------------------------------------------
    async def step(self) -> None:
        now = self.clock()
        if self.hard_reset_requested:
            await self.hard_reset()
        if self.availability is not None:
            try:
                self.availability.settle(self.busy())
            except sqlite3.Error as err:  # not saved: tried again next step
                self.log.warning("scheduled availability change not saved", why=str(err))
        self.evs.step(now)
        charger_faults: set[Fault] = set()  # charger-wide sensors, read once per step
        if await self.board.open_pen_detected():
            charger_faults.add(Fault.OPEN_PEN)
        if await self.board.tilt_detected():
            charger_faults.add(Fault.TILT)
        card = None
        if self.sessions is not None:
            try:
                card = await self.board.read_tag()
            except DeviceError:
                charger_faults.add(Fault.READER_FAILURE)
        readings: dict[int, tuple[PilotReading, bool, MeterReading | None, set[Fault]]] = {}
        for cid, sock in self.sockets.items():
            faults = set(charger_faults)
            pilot = await sock.read_pilot()
            feedback = await sock.feedback_closed()
            try:
                meter: MeterReading | None = await sock.read_meter()
            except DeviceError:
                meter = None
                faults.add(Fault.METER_TIMEOUT)
            rcd = await sock.read_residual_current()
            if rcd.ac_ma >= RCD_AC_TRIP_MA or rcd.dc_ma >= RCD_DC_TRIP_MA:
                faults.add(Fault.RESIDUAL_CURRENT)
            if pilot.diode_ok is False:
                faults.add(Fault.DIODE)
            readings[cid] = (pilot, feedback, meter, faults)
        wall = datetime.now(UTC)
        prepared: dict[int, Prepared] = {}
        if self.sessions is not None:
            prepared, cap = self.sessions.prepare(
                wall, {cid: r[0].state is not PilotState.A for cid, r in readings.items()}, card)
            self.applier.set_charger_cap(cap)
            for cid, p in prepared.items():
                self.applier.set_local_limit(cid, p.local_limit_a)
                self.max_current_a[cid] = p.max_current_a
        offers = self.applier.offered(now)
        for cid, decision in offers.items():
            seen = (decision.current_a, decision.source, decision.lease_ok)
            if self.last_offer.get(cid) != seen:
                self.last_offer[cid] = seen
                # at_s: this host's monotonic clock, shared by every process and network
                # namespace on it, so a checker can line up every charger's offers
                self.log.info("offer", connector_id=cid, current_a=decision.current_a,
                              source=decision.source.value, lease_ok=decision.lease_ok,
                              term=self.applier.term_applied, at_s=round(now, 3))
        for cid, sock in self.sockets.items():
            pilot, feedback, meter, faults = readings[cid]
            prep = prepared.get(cid)
            drawn = max(meter.phase_currents_a) if meter else 0.0
            out = self.machines[cid].step(ConnectorInputs(
                now_s=now, pilot=pilot.state, contactor_feedback_closed=feedback,
                faults=frozenset(faults), authorised=prep is None or prep.authorised,
                postponed=prep is not None and prep.postponed is not None,
                offered_a=offers[cid].current_a,
                operative=self.availability is None or self.availability.operative(cid),
                max_phase_current_a=max(0.0, drawn)))
            for action in out.actions:
                if action.kind is ActionKind.SET_PWM:
                    await sock.offer_current_a(action.current_a)
                elif action.kind is ActionKind.STOP_PWM:
                    await sock.stop_offering()
                elif action.kind is ActionKind.CLOSE_CONTACTOR:
                    await sock.close_contactor()
                elif action.kind is ActionKind.OPEN_CONTACTOR:
                    await sock.open_contactor()
            await sock.show(prep.led if prep is not None and prep.led is not None else out.led)
            if out.status is OcppStatus.AVAILABLE or cid not in self.session_start_wh:
                self.session_start_wh[cid] = meter.import_energy_wh if meter else 0.0
            self.lines_seen[cid] = 0 if out.status is OcppStatus.AVAILABLE else wire.session_lines(
                self.lines_seen.get(cid, 0), meter.phase_currents_a if meter else ())
            self.outputs[cid] = out
            self.meters[cid] = meter
            self.pilots[cid] = pilot.state
        if self.sessions is not None:
            self.sessions.record(wall, [
                Observed(connector_id=cid, status=self.outputs[cid].status,
                         plugged=self.pilots[cid] is not PilotState.A, meter=self.meters[cid],
                         offered_a=self.outputs[cid].pwm_a) for cid in self.sockets])
        if self.link is not None:
            self.link.publish(self.state(now))
        if self.ocpp is not None and self.availability is not None:
            at = datetime.now(UTC)
            self.ocpp.publish([
                StatusReport.for_charger(charger_faults, at=at,
                                         operative=self.availability.operative(0)),
                *(StatusReport.from_output(self.outputs[cid], at=at) for cid in self.sockets)])

    def busy(self) -> set[int]:
        """The connectors with a session: ChangeAvailability waits. With OCPP, an open
        transaction; without, an authorised EV."""
        if self.sessions is not None:
            return self.sessions.busy()
        return {cid for cid, m in self.machines.items() if m.state in DEMAND_STATES}

    async def hard_reset(self) -> None:
        """OCPP hard Reset, the charger's part: re-arm the tilt sensor and clear the
        latched faults of faulted connectors (the next step re-detects what persists)."""
        self.hard_reset_requested = False
        await self.board.clear_tilt()
        for machine in self.machines.values():
            if machine.state is State.FAULTED:
                machine.reset()
        self.log.info("hard reset: latched faults cleared")

    def state(self, now: float, *, report: bool = True) -> pb.AgentState:
        """What this agent tells its master now. `report` False: a look for the local
        interfaces (web, metrics, MQTT), which must not use up a report's sequence
        number; before the first step (no outputs yet) only the id and the lease."""
        if not report and not set(self.outputs) >= set(self.sockets):
            return pb.AgentState(charger_id=self.config.charger_id,
                                 lease_ok=self.applier.lease_ok(now))
        if report:
            self.seq += 1
        return wire.agent_state(self.config, sequence=self.seq, now=now, applier=self.applier,
                                outputs=self.outputs, meters=self.meters, pilots=self.pilots,
                                max_current_a=self.max_current_a,
                                session_start_wh=self.session_start_wh,
                                lines_seen=self.lines_seen, key=self.tag_key,
                                id_tags=None if self.sessions is None else self.sessions.id_tags(),
                                station_limit=None if self.sessions is None else station_limit(
                                    self.sessions.profiles.entries(), datetime.now(UTC)))

    # --- the daemon's life -------------------------------------------------------------
    async def stop_transactions(self) -> None:
        """Graceful shutdown: stop running transactions with reason Reboot, queue the
        messages, and give the link up to SHUTDOWN_FLUSH_S to deliver them (whatever is
        left goes out after the restart)."""
        if self.sessions is None:
            return
        if self.sessions.stop_all(StopReason.REBOOT):
            await self.step()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_FLUSH_S
        while (self.sessions.store.pending_count() and self.ocpp is not None  # noqa: ASYNC110
               and self.ocpp.state is LinkState.ACCEPTED and loop.time() < deadline):
            await asyncio.sleep(0.05)

    async def safe_state(self) -> None:
        for sock in self.sockets.values():
            await sock.stop_offering()
            await sock.open_contactor()

    async def run(self, stop: asyncio.Event) -> None:
        self.audit.started(master=self.address if not callable(self.address) else
                           "the elected master (io7d)", tls=self.tls, ocpp=self.ocpp is not None,
                           term=self.applier.last_seen_term)
        tasks = []
        if self.link is not None:
            tasks.append(asyncio.create_task(self.link.run(stop), name="link"))
        if self.ocpp is not None:
            tasks.append(asyncio.create_task(self.ocpp.run(self.ocpp_stop), name="ocpp"))
        next_local = self.clock()
        try:
            while not stop.is_set():
                if self.link is None and self.clock() >= next_local:
                    await self.local.read_clamps(self.clock())
                    self.applier.on_limits(self.local.limits(
                        self.clock(), self.outputs, self.meters, self.max_current_a,
                        self.lines_seen),
                        self.clock())
                    next_local += AGENT_ONLY_CYCLE_S
                await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=STEP_S)
        finally:
            stop.set()
            await self.stop_transactions()
            self.ocpp_stop.set()
            await self.safe_state()
            self.local.close()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(t, 5)
            if self.ocpp_db is not None:
                self.ocpp_db.close()
            if self.sessions is not None:
                self.sessions.store.close()
                self.sessions.profile_store.close()
            self.log.info("agent stopped: PWM off, contactors open")
            self.audit.stopped(self.applier.last_seen_term)
            self.audit.close()



def _site_ca(tls_dir: Path | None) -> bytes:
    """The site CA certificate's bytes (part of the tag pseudonyms' key), b"" without TLS."""
    if tls_dir is None:
        return b""
    try:
        return (tls_dir / "ca.pem").read_bytes()
    except OSError:
        return b""  # link_tls reports a missing file with its own words


async def serve(config: AgentConfig, *, stop: asyncio.Event,
                master_address: str | None = None) -> None:
    """Run the agent until `stop` is set; the hardware is left in its safe state."""
    agent = Agent(config, master_address=master_address,
                  tls=link_tls(config, now=datetime.now(UTC), master_address=master_address))
    agent.log.info("agent started", master=master_address or config.master_address or
                   "none (agent-only)", connectors=sorted(agent.sockets))
    await agent.run(stop)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7-agent", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="agent.toml")
    ap.add_argument("--master", help="override [master] address, host:port")
    ap.add_argument("--csms-url", help="override [ocpp] url (enables OCPP), ws[s]://host/path")
    args = ap.parse_args(argv)
    try:
        config = load_agent_config(args.config)
        if args.csms_url:
            config = with_csms_url(config, args.csms_url)
    except ConfigError as err:
        print(f"io7-agent: {err}", file=sys.stderr)
        return 2
    configure_logging(config.log_level.upper(), stream=sys.stderr)
    print(json.dumps({"agent": config.charger_id}), flush=True)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(config, stop=stop, master_address=args.master)

    try:
        asyncio.run(until_signalled())
    except ConfigError as err:  # found at start: the state folder cannot hold ocpp.db
        print(f"io7-agent: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
