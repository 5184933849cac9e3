"""`io7d --config io7.toml`: everything one io7 runs: its agent and a master candidate.

The composition root of issue 13 (the one module that imports both agent and master):

1. The agent (agent.service.Agent) runs as `io7-agent` does, except that its link dials
   the member its own Raft node names as the leader, and is retargeted when that changes.
2. The election: this charger's GroupRaft (master.election.raft, PySyncObj) over the
   mutual-TLS Raft link (master.election.tlstransport) on the port after its member
   address, ticked every TICK_S from this event loop. Its journal keeps the term across
   restarts (<state dir>/raft.journal).
3. While this member leads with a confirmed leader lease, it runs the group's master
   (master.service.serve with `Elected`): term = the Raft term, every Limits lease capped
   at the leader lease, the start-of-term hold from its start. When it stops leading, or
   its term changes, that master stops (its gRPC server closes: agents dial the new
   one). A leader that is not the CT holder runs in CT-lost mode (the fallback limit).
   The master's modules (master.service: control, the numpy engine, the gRPC server's,
   ~20 MB resident, issue 15) are imported at this member's first lead, in a thread so
   Raft keeps ticking (heartbeats every 0.1 s): that first master starts once they are.
   The CT holder, the preferred leader (rule 4), imports them at start instead.
4. Placement: the CT holder ([group] ct_charger) is the preferred leader: another leader
   hands over to it once it is up and caught up (GroupRaft `preferred`); the new term
   starts with its hold, so the hand-over never relies on the old leases.
5. A one-member group (scenario A's lone charger with a master of its own) has no
   election: its master runs at once with a term from its term file, as io7-master does.
6. Every leadership change is a log line on every member ("leader", with the term), and
   on the member that takes or leaves the lead its master's security-log entries
   (master started / stopped, with the term).
7. Its interfaces (issue 14, master/web): a `Station` handle kept current with the
   running master and the election's view; with [web], the UI and REST API served in
   this loop (master/web/server.py), its URL printed as {"web": url}; with [mqtt], the
   MQTT client (master/mqtt.py) reading the same Station.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import structlog

from agent.linktls import link_tls
from agent.service import Agent
from hw.logconfig import configure_logging
from hw.securitylog import SecurityLog
from master.election.lease import LeaseSettings
from master.election.raft import ElectionView, GroupRaft
from master.election.tlstransport import tls_transport_class
from master.errors import ConfigError, MasterError
from master.gctune import freeze_imported, tune_for_daemon
from master.io7dconfig import Io7Config, load_io7_config
from master.tlsconfig import load_server_tls
from master.web.station import build_station
from protos.tls import TlsFiles

if TYPE_CHECKING:
    from master.service import Master

TICK_S = 0.05
# The shortest lease worth issuing: agents refuse leases below their [link] min_lease_s,
# 1 s by default (agent/bounds.py), so a leader lease closer to its end than that stops.
MIN_VALID_S = 1.0
log = structlog.get_logger("io7d")


class Candidate:
    """Rule 3: runs this member's master while it leads with a confirmed lease.

    A master that stops is awaited in the background (its gRPC grace takes seconds, and
    Raft must keep ticking meanwhile); the next starts only once it has ended. A master
    that fails (a port taken, TLS files gone) is logged with its error and tried again
    after RETRY_S; after HAND_OVER_AFTER failures in a row this member hands the lead to
    another (transferLeadership), since it holds the group without serving it."""

    RETRY_S = 5.0
    HAND_OVER_AFTER = 3

    def __init__(self, config: Io7Config, raft: GroupRaft | None) -> None:
        self.config = config
        self.raft = raft
        self.term: int | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self.failures = 0
        self.on_master: Callable[[Master | None], None] | None = None  # the web's Station
        self._imported: asyncio.Task[ModuleType] | None = None  # rule 3: master.service
        self._import_started = 0.0
        self.log = log.bind(charger_id=config.charger_id, group=config.master.group.name)

    def lease_left_s(self) -> float:
        return 0.0 if self.raft is None else self.raft.lease.valid_for_s(time.monotonic())

    def follow(self, view: ElectionView, now_s: float) -> None:
        """Start or stop this member's master after a tick (rule 3)."""
        self._reap(now_s)
        running = self._task is not None
        if running and (not view.leading or view.term != self.term):
            self.log.warning("no longer leads: master stopped", term=self.term,
                             leader=view.leader_id)
            self._stopping = asyncio.create_task(self._stopped(), name="master stop")
            running = False
        if (not running and view.leading and view.valid_for_s > 0.0
                and self._stopping is None and now_s >= self._retry_at
                and self.master_imported(now_s)):
            self.start(view.term)

    def master_imported(self, now_s: float) -> bool:
        """Rule 3: whether master.service is imported; starts its import in a thread the
        first time (a failed import is logged and tried again after RETRY_S)."""
        task = self._imported
        if task is None:
            # Always in the thread, even when sys.modules has it: the web app may be
            # importing it in its own thread right now, and start()'s import would then
            # wait for that on the event loop (Raft's heartbeats with it).
            self._import_started = now_s
            self._imported = asyncio.create_task(asyncio.to_thread(
                importlib.import_module, "master.service"), name="master import")
            return False
        if not task.done():
            return False
        if task.cancelled() or task.exception() is not None:
            # A member that cannot load its master holds the group without serving it:
            # counted as a failed master (class doc), handed over after HAND_OVER_AFTER.
            self.failures += 1
            self.log.error("master import failed: retrying", retry_in_s=self.RETRY_S,
                           failures=self.failures,
                           error="cancelled" if task.cancelled() else repr(task.exception()))
            self._imported = None
            self._retry_at = now_s + self.RETRY_S
            if self.raft is not None and self.failures >= self.HAND_OVER_AFTER:
                self.raft.transferLeadership()
            return False
        if self._import_started:
            self.log.info("master modules imported", ms=round(
                (now_s - self._import_started) * 1000))
            self._import_started = 0.0
            freeze_imported()  # master/gctune.py rule 3
        return True

    def _reap(self, now_s: float) -> None:
        """A master task that ended by itself failed: log why, retry later (class doc)."""
        task = self._task
        if task is None or not task.done() or self._stop is None or self._stop.is_set():
            return
        error = None if task.cancelled() else task.exception()
        self.failures += 1
        self.log.error("master failed: retrying", term=self.term, error=repr(error),
                       retry_in_s=self.RETRY_S, failures=self.failures)
        self._task = self._stop = None
        self._retry_at = now_s + self.RETRY_S
        if self.raft is not None and self.failures >= self.HAND_OVER_AFTER:
            self.raft.transferLeadership()  # the most caught-up connected member

    def start(self, term: int | None) -> None:
        """Serve the group's master; `term` None: a lone charger's own (rule 5)."""
        # Not at start (rule 3): imported by then (in a thread) unless a lone charger's.
        from master.service import Elected, serve  # noqa: PLC0415

        self.term = term
        self._stop = asyncio.Event()
        elected = None if term is None else Elected(
            term=term, lease_left_s=self.lease_left_s, members=tuple(self.config.members),
            first_cycle=int(time.monotonic() * 1000))
        master = serve(self.config.master, stop=self._stop, elected=elected) \
            if self.on_master is None else serve(self.config.master, stop=self._stop,
                                                 elected=elected, on_master=self.on_master)
        self._task = asyncio.create_task(master, name="master")
        self.log.warning("leads the group: master started", term=term,
                         ct="this charger's kit" if self.config.holds_ct else
                         "none here: CT-lost mode, fallback limit")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def _stopped(self) -> None:
        task, event = self._task, self._stop
        self._task = self._stop = None
        self.term = None
        if task is not None and event is not None:
            event.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        self._stopping = None

    async def stop(self) -> None:
        """At exit: stop the master and wait for it (and for its import, if under way)."""
        if self._imported is not None:
            with contextlib.suppress(Exception):
                await self._imported
        if self._stopping is None and self._task is not None:
            self._stopping = asyncio.create_task(self._stopped())
        if self._stopping is not None:
            await self._stopping


def _raft(config: Io7Config, loop: asyncio.AbstractEventLoop, security: SecurityLog,
          term_floor: int) -> GroupRaft:
    """This member's Raft node. `term_floor`: the newest term its agent has seen (a site
    moved from io7-master, or every journal lost): Raft terms start above it, or every
    agent would ignore the elected masters (raising one's own term is always safe)."""
    tls = config.master.tls
    if tls is None:  # io7dconfig refuses plaintext for groups of several members
        raise ConfigError(file=config.file, key="tls.dir", problem="the election needs TLS")
    server_tls, _ = load_server_tls(tls, file=config.file, now=datetime.now(UTC))
    addresses = {cid: config.raft_address(cid) for cid in config.members}
    transport = tls_transport_class(server_tls.material, TlsFiles.in_folder(tls.dir),
                                    addresses, loop, log.bind(charger_id=config.charger_id),
                                    security=security, revocations=server_tls.crl.current,
                                    bind_hint=f'the port after [group.members] '
                                    f'"{config.charger_id}" in {config.file}',
                                    group_digest=config.group_digest)
    lease = LeaseSettings(lease_s=config.master.lease_ms / 1000.0, min_valid_s=MIN_VALID_S)
    return GroupRaft(config.charger_id, addresses, lease=lease, transport_class=transport,
                     journal_path=str(config.agent.state_dir / "raft.journal"),
                     preferred=config.ct_charger, term_floor=term_floor)


async def run(config: Io7Config, stop: asyncio.Event) -> None:
    """Rules 1-5 until `stop` is set."""
    config.agent.state_dir.mkdir(parents=True, exist_ok=True)
    lone = len(config.members) == 1
    view: ElectionView | None = None

    def leader_address() -> str | None:
        if lone:
            return config.members[config.charger_id]
        if view is None or view.leader_id is None:
            return None
        return config.members[view.leader_id]

    agent = Agent(config.agent, master_address=leader_address,
                  tls=link_tls(config.agent, now=datetime.now(UTC),
                               master_address=config.members[config.charger_id]))
    # the Raft link's refusals go to this charger's security log (the agent's)
    raft = None if lone else _raft(config, asyncio.get_running_loop(), agent.audit.log,
                                   agent.applier.last_seen_term)
    candidate = Candidate(config, raft)
    if raft is not None and config.holds_ct:
        candidate.master_imported(time.monotonic())  # rule 3: it will lead
    station = build_station(config, agent)  # rule 7
    web = None
    if config.web is not None:  # uvicorn; the app (fastapi...) built when first needed
        from master.web.server import announce, start_web  # noqa: PLC0415 (only with [web])
        web = await start_web(station)
        if web is not None:
            announce(station, web)

    def on_master(master: Master | None) -> None:
        station.set_master(master)
        if master is not None and web is not None:
            web.preload()  # its history's sampler records while this member leads

    candidate.on_master = on_master
    mqtt: asyncio.Task[None] | None = None
    if config.mqtt is not None:  # [mqtt] (master/mqtt.py), imported only then
        from master.mqtt import run_mqtt  # noqa: PLC0415 (aiomqtt, paho: ~15 MB resident)
        mqtt = asyncio.create_task(run_mqtt(
            config.mqtt, station, group=config.master.group.name,
            charger_id=config.charger_id, members=list(config.members),
            installed_limit_a=config.master.group.limit_a, stop=stop), name="mqtt")
    agent_task = asyncio.create_task(agent.run(stop), name="agent")
    try:
        if raft is None:
            candidate.start(None)
            master = candidate.task
            assert master is not None
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({master, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if master.done() and not stop.is_set():
                master.result()  # its error ends io7d (main: ConfigError -> exit 2)
            return
        leader: str | None = None
        while not stop.is_set():
            view = raft.tick(time.monotonic())
            station.set_view(view)
            if view.leader_id != leader:
                leader = view.leader_id
                log.info("leader", charger_id=config.charger_id, leader=leader,
                         term=view.term)
                if agent.link is not None:
                    agent.link.retarget()
            candidate.follow(view, time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=TICK_S)
    finally:
        stop.set()
        if web is not None:
            await web.stop()
        if mqtt is not None:
            from master.mqtt import stopped  # noqa: PLC0415 (as above)
            await stopped(mqtt)
        await candidate.stop()
        await agent_task
        if raft is not None:
            raft.close()
            await raft.transport.wait_closed()


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc's malloc keeps an arena per thread up to 8 per core, each holding its freed
    memory (gRPC runs ~6 native threads): at most `arenas` (as MALLOC_ARENA_MAX=2; the
    environment variable, set by deploy/systemd/io7d.service, wins). Effective while
    glibc has made at most 8 arenas, i.e. before the threads start: call it first in
    main. False where there is no glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-8, arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_malloc_arenas()
    ap = argparse.ArgumentParser(prog="io7d", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="io7.toml")
    args = ap.parse_args(argv)
    try:
        config = load_io7_config(args.config)
    except ConfigError as err:
        print(f"io7d: {err}", file=sys.stderr)
        return 2
    configure_logging(config.agent.log_level.upper(), stream=sys.stderr)
    print(json.dumps({"io7d": config.charger_id, "members": sorted(config.members)}),
          flush=True)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run(config, stop)

    tune_for_daemon()  # master/gctune.py, as io7-master
    try:
        asyncio.run(until_signalled())
    except MasterError as err:  # ConfigError, or the Raft port taken (RaftBindError)
        print(f"io7d: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
