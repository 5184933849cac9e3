"""A whole group in virtual time: Raft election, leases, allocation, agents and EVs.

Each member is one io7 Double: PySyncObj's Raft through master.election.raft.GroupRaft
(the leader lease from committed probes), a master.control.GroupControl created by the
member while it leads with a confirmed lease (term = the Raft term, so its start-of-term
hold runs), and the agent's own cores with an EV on each socket (master.sim.agents:
agent.limits.LimitApplier with its lease and increase rules, agent.connector, hw.sim EVs
that follow the pilot after their delay). A crashed member draws nothing and forgets all
but its disk: its Raft journal and its agent's newest term seen.

Member 1 is the CT holder, the preferred leader (GroupRaft `preferred`). The schedule (a
seed gives it all): 3-9 members, a per-phase limit, an offline strategy,
and 1-5 faults: crash (and maybe restart), partition into two sides, one cut link, slow
links (delays up to 0.8 s), each healed after a while. `run` checks at every check point
(every 100 ms and after every Limits delivery) the invariant of issue 13: on every phase,
the sum over all sockets of what each may draw now (its offer from whichever master it
obeys, or its fail-safe) is within the limit; and that no agent ever goes back to an older
term. At the end, with every fault healed, one member leads with a confirmed lease, and
it is the CT holder if that one is up and the faults healed 18 s before the end.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from agent.limits import LimitApplier, MasterLimits
from hw.sim.ev import EvModel, EvSpec
from master.allocation import GroupConfig, OfflineStrategy, Phase
from master.control import GroupControl
from master.election.lease import LeaseSettings
from master.election.raft import ElectionView, GroupRaft
from master.membership import Member
from master.reports import MemberReport
from master.sim.agents import Session, SimAgent
from master.sim.controllers import member_of
from master.sim.scenario import Arrival, ChargerSpec
from tests.election.vnet import Clock, Net, transport_class, virtual_pysyncobj

DT_S = 0.05  # Raft tick, network and check granularity (io7d ticks Raft at 20 Hz too)
CHECK_EVERY_S = 0.1  # and at every Limits delivery, where offers change at once
AGENT_STEP_S = 0.25
CYCLE_S = 1.0
ROTATIONS: tuple[tuple[Phase, Phase, Phase], ...] = (
    (Phase.L1, Phase.L2, Phase.L3), (Phase.L2, Phase.L3, Phase.L1),
    (Phase.L3, Phase.L1, Phase.L2))


@dataclass(frozen=True, slots=True)
class Fault:
    at_s: float
    kind: str  # crash | partition | cut | slow
    members: tuple[str, ...]  # crash: one; partition: one side; cut/slow: a pair
    for_s: float | None  # None: a crashed member never comes back
    delay_s: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Schedule:
    seed: int
    ids: tuple[str, ...]
    limit_a: float
    strategy: OfflineStrategy
    faults: tuple[Fault, ...]
    duration_s: float
    ev_phases: tuple[int, ...]  # per socket, in member order


def make_schedule(seed: int, *, duration_s: float = 30.0) -> Schedule:
    rng = random.Random(seed)
    n = rng.randint(3, 9)
    ids = tuple(f"io7-{i:02d}" for i in range(1, n + 1))
    strategy = rng.choice((OfflineStrategy.MAXIMISE, OfflineStrategy.ZERO,
                           OfflineStrategy.MINIMISE))
    per_phase_sockets = 2 * n  # every socket may load a phase (3-phase cars)
    low = 6.0 * per_phase_sockets if strategy is OfflineStrategy.MINIMISE else 16.0
    limit = float(rng.randint(int(low), int(low) + 60))
    faults = []
    for _ in range(rng.randint(1, 5)):
        at = round(rng.uniform(2.0, duration_s - 12.0), 2)
        kind = rng.choice(("crash", "crash", "partition", "cut", "slow"))
        heal = round(rng.uniform(0.5, 8.0), 2)
        if kind == "crash":
            faults.append(Fault(at, kind, (rng.choice(ids),),
                                None if rng.random() < 0.2 else heal))
        elif kind == "partition":
            side = tuple(sorted(rng.sample(ids, rng.randint(1, n // 2))))
            faults.append(Fault(at, kind, side, heal))
        else:
            pair = tuple(sorted(rng.sample(ids, 2)))
            slow = (rng.uniform(0.0, 0.3), rng.uniform(0.3, 0.8))
            faults.append(Fault(at, kind, pair, heal, slow if kind == "slow" else (0, 0)))
    faults.sort(key=lambda f: f.at_s)
    return Schedule(seed=seed, ids=ids, limit_a=limit, strategy=strategy, faults=tuple(faults),
                    duration_s=duration_s,
                    ev_phases=tuple(rng.choice((1, 3, 3)) for _ in range(2 * n)))


class InvariantBroken(AssertionError):
    """A schedule broke the invariant, an agent's term order, or liveness once healed."""


@dataclass
class _Member:
    spec: ChargerSpec
    member: Member
    journal: str
    alive: bool = False
    raft: GroupRaft | None = None
    agent: SimAgent | None = None
    view: ElectionView | None = None
    master: GroupControl | None = None
    next_cycle_s: float = 0.0
    inbox: list[MemberReport] = field(default_factory=list)
    last_seen_term: int = 0  # on the agent's disk
    highest_seen: int = 0  # what the checks saw: never goes back, even across restarts
    highest_applied: int = 0
    sessions: dict[int, Session] = field(default_factory=dict)  # the cars stay plugged


@dataclass
class Outcome:
    checks: int = 0
    terms: set[int] = field(default_factory=set)
    leader_changes: int = 0
    raft_bytes: int = 0
    takeovers_s: list[float] = field(default_factory=list)


class GroupModel:
    """Run one schedule (`run`); InvariantBroken says what broke, when, and the seed."""

    LEASE = LeaseSettings(lease_s=3.0, min_valid_s=1.0, probe_every_s=0.2)

    def __init__(self, schedule: Schedule, workdir: Path) -> None:
        self.s = schedule
        self.rng = random.Random(schedule.seed * 7919 + 1)
        self.clock = Clock()
        self.net = Net(self.clock, self.rng, (0.001, 0.02))
        self.group = GroupConfig(name="carpark", limit_a=schedule.limit_a,
                                 offline_strategy=schedule.strategy, lease_s=self.LEASE.lease_s,
                                 settle_s=5.0)
        self.addresses = {cid: f"{cid}:4711" for cid in schedule.ids}
        self.members: dict[str, _Member] = {}
        for i, cid in enumerate(schedule.ids):
            spec = ChargerSpec(charger_id=cid, group="carpark", current_limit_a=32.0,
                               wiring=ROTATIONS[i % 3])
            m = _Member(spec=spec, member=member_of(spec), journal=str(workdir / f"{cid}.journal"))
            for k in (1, 2):
                phases = schedule.ev_phases[2 * i + k - 1]
                ev = EvSpec(phases=phases, onboard_max_a=32.0 if phases == 1 else 16.0,
                            battery_wh=200_000.0, response_delay_s=self.rng.uniform(0.5, 2.5))
                arrival = Arrival(at_s=0.0, charger_id=cid, connector_id=k, ev=ev, soc=0.1,
                                  leave_s=1e9)
                m.sessions[k] = Session(arrival=arrival, ev=EvModel(ev, soc=0.1, now_s=0.0))
            self.members[cid] = m
            self.net.app[cid] = partial(self._on_app, cid)
        self.out = Outcome()
        self._transport = transport_class(self.net)
        self._leader_down_at: float | None = None

    # -- faults ---------------------------------------------------------------------------
    def _start(self, m: _Member) -> None:
        now = self.clock.now_s
        m.alive = True
        self.net.alive.add(m.spec.charger_id)
        m.raft = GroupRaft(m.spec.charger_id, self.addresses, lease=self.LEASE,
                           transport_class=self._transport, journal_path=m.journal,
                           preferred=self.s.ids[0])
        agent = SimAgent(m.spec, initial_failsafe_a=self.group.failsafe_current_a, now_s=now)
        agent.applier = LimitApplier((1, 2), m.spec.current_limit_a, {1: 32.0, 2: 32.0},
                                     initial_failsafe_a=self.group.failsafe_current_a,
                                     last_seen_term=m.last_seen_term)
        for s in m.sessions.values():
            s.ev.advance(now)
        agent.sessions = m.sessions
        m.agent, m.master, m.view, m.inbox = agent, None, None, []

    def _crash(self, m: _Member) -> None:
        if not m.alive:
            return
        if m.master is not None:
            self._leader_down_at = self.clock.now_s
        assert m.raft is not None and m.agent is not None
        m.last_seen_term = m.agent.applier.last_seen_term
        m.raft.close()
        for s in m.sessions.values():  # the charger is off: no pilot, no supply
            s.ev.offer(self.clock.now_s, 0.0)
            s.ev.set_supply(self.clock.now_s, False)
        m.alive, m.raft, m.agent, m.master = False, None, None, None
        self.net.alive.discard(m.spec.charger_id)

    def _apply(self, f: Fault, healing: bool) -> None:
        if f.kind == "crash":  # a restart of a live member (two faults overlap) is a no-op
            m = self.members[f.members[0]]
            if healing and not m.alive:
                self._start(m)
            elif not healing:
                self._crash(m)
            return
        if f.kind == "partition":
            side = set(f.members)
            pairs = {frozenset((a, b)) for a in side for b in self.members if b not in side}
        else:
            pairs = {frozenset(f.members)}
        for p in pairs:
            if f.kind == "slow":
                if healing:
                    self.net.slow.pop(p, None)
                else:
                    self.net.slow[p] = f.delay_s
            elif healing:
                self.net.cut.discard(p)
            else:
                self.net.cut.add(p)

    # -- messages -------------------------------------------------------------------------
    def _on_app(self, dst: str, src: str, payload: Any) -> None:
        m = self.members[dst]
        if isinstance(payload, MemberReport):
            if m.master is not None:
                m.inbox.append(payload)
        elif m.agent is not None:
            m.agent.on_limits(payload, self.clock.now_s)
            self._check()

    # -- one member's duties --------------------------------------------------------------
    def _lead(self, m: _Member, view: ElectionView) -> None:
        now = self.clock.now_s
        me = m.spec.charger_id
        if not view.leading:
            m.master = None
            return
        if view.valid_for_s <= 0.0:
            return  # leads, unconfirmed: issue nothing (lease.py rule 4)
        if m.master is None or m.master.term != view.term:
            if m.master is None and self._leader_down_at is not None:
                self.out.takeovers_s.append(now - self._leader_down_at)
                self._leader_down_at = None
            m.master = GroupControl(group=self.group, term=view.term,
                                    members=[x.member for x in self.members.values()],
                                    now_s=now)
            m.next_cycle_s = now
            self.out.terms.add(view.term)
            self.out.leader_changes += 1
        if now + 1e-9 < m.next_cycle_s:
            return
        m.next_cycle_s += CYCLE_S
        control = m.master
        for other in self.members.values():
            cid = other.spec.charger_id
            follows = other.alive and other.view is not None and other.view.leader_id == me
            if follows and cid not in control.connected_ids():
                control.member_connected(other.member, now)
            elif not follows and cid in control.connected_ids():
                control.member_disconnected(cid, now)
        for report in m.inbox:
            control.report(report)
        m.inbox = []
        result = control.cycle(now)
        valid = min(result.lease_ms / 1000, view.valid_for_s)
        for cid, lims in result.limits.items():
            msg = MasterLimits(term=result.term, cycle=result.cycle, valid_for_s=valid,
                               failsafe_current_a=result.failsafe_current_a,
                               currents_a={lim.connector_id: lim.current_a for lim in lims})
            self._send("limits", me, cid, msg)

    def _send(self, kind: str, src: str, dst: str, payload: Any) -> None:
        self.net.send(kind, src, dst, payload)

    def _report(self, m: _Member) -> None:
        assert m.agent is not None
        leader = None if m.view is None else m.view.leader_id
        if leader is not None:
            self.net.send("report", m.spec.charger_id, leader, m.agent.report(self.clock.now_s))

    # -- the invariant ----------------------------------------------------------------------
    def _check(self) -> None:
        now = self.clock.now_s
        self.out.checks += 1
        load = [0.0, 0.0, 0.0]
        for m in self.members.values():
            if not m.alive:
                continue
            assert m.agent is not None
            applier = m.agent.applier
            offers = applier.offered(now)
            for k, s in m.sessions.items():
                amps = offers[k].current_a
                for line in range(s.ev.spec.phases):
                    phase = m.spec.wiring[line]
                    assert phase is not None
                    load[phase] += amps
            seen, applied = applier.last_seen_term, applier.term_applied
            if seen < m.highest_seen or applied > seen or 0 < applied < m.highest_applied:
                raise InvariantBroken(
                    f"t={now:.2f} s: {m.spec.charger_id} obeys term {applied} having seen "
                    f"{seen} (before: seen {m.highest_seen}, obeyed {m.highest_applied})")
            m.highest_seen, m.highest_applied = seen, max(applied, m.highest_applied)
        for p, amps in enumerate(load):
            if amps > self.s.limit_a + 1e-6:
                raise InvariantBroken(
                    f"t={now:.2f} s: phase L{p + 1} may draw {amps:.1f} A > limit "
                    f"{self.s.limit_a:g} A; {self._describe(now)}")

    def _describe(self, now: float) -> str:
        parts = []
        for m in self.members.values():
            if not m.alive or m.agent is None:
                parts.append(f"{m.spec.charger_id}: down")
                continue
            a = m.agent.applier
            offers = a.offered(now)
            lead = "" if m.master is None else f" LEADS term {m.master.term}"
            parts.append(f"{m.spec.charger_id}: term {a.term_applied} offers "
                         f"{offers[1].current_a:g}/{offers[2].current_a:g}{lead}")
        return "; ".join(parts)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> Outcome:
        with virtual_pysyncobj(self.clock, self.rng):
            try:
                return self._run()
            finally:
                for m in self.members.values():
                    if m.raft is not None:
                        m.raft.close()

    def _run(self) -> Outcome:
        for m in self.members.values():
            self._start(m)
        edges = sorted([(f.at_s, 0, i, f) for i, f in enumerate(self.s.faults)]
                       + [(f.at_s + f.for_s, 1, i, f) for i, f in enumerate(self.s.faults)
                          if f.for_s is not None], key=lambda e: (e[0], e[1], e[2]))
        steps = round(self.s.duration_s / DT_S)
        per_check = round(CHECK_EVERY_S / DT_S)
        per_agent = round(AGENT_STEP_S / DT_S)
        per_cycle = round(CYCLE_S / DT_S)
        order = list(self.members.values())
        for i in range(1, steps + 1):
            self.clock.now_s = now = round(i * DT_S, 6)
            while edges and edges[0][0] <= now:
                _, healing, _, f = edges.pop(0)
                self._apply(f, bool(healing))
            self.net.deliver()
            for j, m in enumerate(order):
                if not m.alive:
                    continue
                assert m.raft is not None and m.agent is not None
                m.raft._SyncObj__transport.refresh()
                m.view = m.raft.tick(now)
                self._lead(m, m.view)
                if (i + j) % per_agent == 0:
                    m.agent.advance(now)
                    m.agent.step(now)
                if (i + 3 * j) % per_cycle == 0:
                    m.agent.advance(now)
                    self._report(m)
            if i % per_check == 0:
                self._check()
        self.out.raft_bytes = self.net.raft_bytes
        self._check_healed()
        return self.out

    def _check_healed(self) -> None:
        """Liveness: with every fault healed for long enough, one member leads, confirmed."""
        if any(f.for_s is not None and f.at_s + f.for_s > self.s.duration_s - 8.0
               for f in self.s.faults):
            return
        alive = [m for m in self.members.values() if m.alive]
        if len(alive) * 2 <= len(self.members):
            return  # no majority left: nobody may lead
        leaders = [m for m in alive if m.view is not None and m.view.leading
                   and m.view.valid_for_s > 0.0]
        if len(leaders) != 1:
            raise InvariantBroken(f"end: {len(leaders)} confirmed leaders once healed; "
                                  f"{self._describe(self.clock.now_s)}")
        ct_holder = self.members[self.s.ids[0]]
        healed_at = max([f.at_s + (f.for_s or 0.0) for f in self.s.faults], default=0.0)
        # a hand-over that failed (the CT holder cut off but its link up) retries after
        # RETRY_S: PREFER_AFTER_S + HANDOVER_S + RETRY_S + an election fit in 18 s
        if (ct_holder.alive and healed_at < self.s.duration_s - 18.0
                and leaders[0] is not ct_holder):
            raise InvariantBroken(f"end: {leaders[0].spec.charger_id} leads, healed since "
                                  f"{healed_at:g} s, not the CT holder {self.s.ids[0]}")


def run_seed(seed: int, duration_s: float = 30.0) -> Outcome:
    """One schedule; an InvariantBroken message names the seed (and length) to replay."""
    with tempfile.TemporaryDirectory(prefix="io7-model-") as tmp:
        schedule = make_schedule(seed, duration_s=duration_s)
        try:
            return GroupModel(schedule, Path(tmp)).run()
        except InvariantBroken as exc:
            raise InvariantBroken(f"seed {seed} ({schedule}): {exc}\nreplay: .venv/bin/python "
                                  f"-m tests.election.groupmodel {seed} --duration "
                                  f"{duration_s:g}") from None


if __name__ == "__main__":
    import sys
    import time

    t0 = time.process_time()
    args = sys.argv[1:] or ["1"]
    duration = 30.0
    if "--duration" in args:
        at = args.index("--duration")
        duration = float(args[at + 1])
        del args[at:at + 2]
    for arg in args:
        lo, _, hi = arg.partition("-")
        for seed in range(int(lo), int(hi or lo) + 1):
            out = run_seed(seed, duration)
            print(seed, f"checks={out.checks} terms={sorted(out.terms)} "
                  f"takeovers={[round(t, 2) for t in out.takeovers_s]} bytes={out.raft_bytes}")
    print(f"cpu {time.process_time() - t0:.2f} s")
