"""Which connectors charge: the 6 A minimum, fair admission, welcome, rotation.

IEC 61851 cannot offer less than 6 A, so when the room does not stretch to 6 A for
every EV on every phase it loads, some must pause. Admission is greedy in five passes,
sharing one budget of room per site phase and per charger; a connector needs room only
on the phases it is counted on (phases.py), so a single-phase car on an idle phase gets
in whatever the other phases carry:

  1. connectors already charging, and new cars in their welcome slot (need 6 A):
     stopping one costs a contactor cycle;
  2. lenders: connectors paused to make a welcome slot (need 6 A): back first; with
     them, connectors of a lower class starved for max_starve_s (below);
  3. new cars, never offered since they want power (need 6 A, no hysteresis): the
     welcome slot (welcome.py), so the driver sees charging start and the meter shows
     the lines the car loads;
  4. waiting connectors (need 6 A, and the resume hysteresis left over on every phase
     they load, so that a resume is not undone by the next small load change), unless
     paused less than min_pause_s ago;
  5. connectors rotated out this cycle, cars that draw nothing (full: their room goes
     to a waiting car at once) and welcome slots past their time while a lender waits
     (need 6 A): if the room they free is of no use to anyone waiting, they carry on.

Then, if a new car still has no room, welcome.borrow pauses running cars for one short
welcome slot. Within a pass the order is: highest priority class first (issue 12 §3),
then fair: least energy this session in whole kWh (`FAIR_ENERGY_STEP_WH`), then longest
waiting. Rotation: when a waiting connector that did not fit has waited a rotation
period, the longest-running connectors (run at least a rotation period and min_run_s)
move to pass 5, as many as there are such waiting connectors.

Priority classes (only when the eligible connectors are not all of one class, so a site
without priorities runs exactly as above): a waiting connector pre-empts a running one of
a lower class that has run min_run_s; rotation never pauses a higher class for a lower
one; and a connector that has waited `max_starve_s` counts as the top class, so it gets
its turn (pausing the lowest class that has run min_run_s) within about
max_starve_s + min_run_s: the bound on starvation (tests/property).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from master.allocation import welcome
from master.allocation.model import MIN_CURRENT_A

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

# The fair order compares session energy in steps of this: a welcome slot's few Wh (45 s at
# 6 A: 17 Wh a line) must not put a car that has waited for hours behind one plugged in
# after it (io7-sim random:13 left such a car with nothing: 50 Wh in a 2.6 h stay).
FAIR_ENERGY_STEP_WH = 1000.0
_EPS = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidates:
    """Per connector: who may charge and the history admission needs."""

    eligible: BoolArray  # online, wants power, own cap >= 6 A
    running: BoolArray  # had an allocation > 0 last cycle
    in_min_pause: BoolArray  # paused by the engine less than min_pause_s ago
    waiting_since_s: FloatArray  # NaN when not waiting
    running_since_s: FloatArray  # NaN when not running; a lender keeps it (fair order)
    started_at_s: FloatArray  # its latest start (NaN: unknown, running_since_s stands)
    energy_wh: FloatArray
    priority: FloatArray
    loads: BoolArray  # (n, 3)
    partner: IntArray
    charger_limit_a: FloatArray
    new: BoolArray  # wants power, never admitted since: due a welcome slot
    in_welcome: BoolArray  # its welcome slot is in force: kept like a running one
    lender: BoolArray  # paused to make a welcome slot, waiting to come back
    yielding: BoolArray  # idle (draws nothing) or a welcome past its time with a lender out
    idle: BoolArray  # running, draws nothing: first to lend


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: BoolArray
    rotated_out: BoolArray  # chosen for rotation and not re-admitted
    full_phase: IntArray  # for a refused connector: a loaded phase without room, or -1
    lent: BoolArray  # paused this cycle to make a welcome slot
    borrowed: BoolArray  # admitted into a welcome slot made by pausing `lent`


def admit(
    c: Candidates,
    room_a: FloatArray,
    *,
    now_s: float,
    hysteresis_a: float,
    rotation_period_s: float,
    min_run_s: float,
    max_starve_s: float = 3600.0,
) -> Admission:
    """Choose the connectors that get at least 6 A within `room_a` (per site phase)."""
    starved = _starved(c, now_s, max_starve_s)
    if starved is not None:
        c = replace(c, priority=np.where(starved, c.priority.max() + 1.0, c.priority))
    order = _fair_order(c, now_s)
    none = np.zeros(len(c.eligible), dtype=bool)
    free = none if starved is None else starved  # a starved turn needs no hysteresis
    admitted, rem = _passes(c, order, room_a, none, hysteresis_a, free)
    if starved is None:
        rotating = _rotation(c, admitted, now_s, rotation_period_s, min_run_s)
    else:
        rotating = _class_rotation(c, admitted, now_s, rotation_period_s, min_run_s, starved)
    if np.count_nonzero(rotating):
        admitted, rem = _passes(c, order, room_a, rotating, hysteresis_a, free)
    lent, borrowed = welcome.borrow(
        order=order, new=c.eligible & c.new & ~admitted,
        may_lend=admitted & c.running & ~c.in_welcome & (_settled(c, now_s, min_run_s) | c.idle),
        idle=c.idle, energy_wh=c.energy_wh, loads=c.loads, rem=rem,
        blocked=_tight_partner(c, admitted),
        lender_out=bool(np.count_nonzero(c.lender & ~admitted)))
    admitted = (admitted & ~lent) | borrowed
    refused = c.eligible & ~admitted
    slack = np.where(c.new, 0.0, hysteresis_a)
    no_room = refused[:, None] & c.loads & (rem < MIN_CURRENT_A + slack[:, None] - _EPS)
    full_phase = np.where(no_room.any(axis=1), np.argmax(no_room, axis=1), -1)
    return Admission(admitted=admitted, rotated_out=rotating & ~admitted, full_phase=full_phase,
                     lent=lent, borrowed=borrowed)


def _tight_partner(c: Candidates, admitted: BoolArray) -> BoolArray:
    """Connectors whose charger partner is admitted on a shared phase under a Charger
    Current Limit below 2 x 6 A: no welcome slot can be made for them by borrowing."""
    p = c.partner
    safe_p = np.where(p >= 0, p, 0)
    shares = (p >= 0) & (c.loads & c.loads[safe_p]).any(axis=1)
    blocked: BoolArray = shares & admitted[safe_p] & (c.charger_limit_a < 2 * MIN_CURRENT_A - _EPS)
    return blocked


def _settled(c: Candidates, now_s: float, min_run_s: float) -> BoolArray:
    """Running at least min_run_s since its latest start: only then may it be paused by
    rotation or lending, whatever run time it kept for the fair order (a lender does)."""
    since = np.fmax(c.running_since_s, c.started_at_s)
    settled: BoolArray = (now_s - np.where(np.isnan(since), now_s, since)) >= min_run_s
    return settled


def _fair_order(c: Candidates, now_s: float) -> IntArray:
    """Highest priority class, then least session energy in whole kWh, then longest
    waiting, then row."""
    waiting = np.where(np.isnan(c.waiting_since_s), now_s, c.waiting_since_s)
    rows = np.arange(len(c.eligible))
    energy = np.floor(c.energy_wh / FAIR_ENERGY_STEP_WH)
    return np.lexsort((rows, waiting, energy, -c.priority)).astype(np.int64)


def _starved(c: Candidates, now_s: float, max_starve_s: float) -> BoolArray | None:
    """None when the eligible connectors are all of one class; else those that have
    waited `max_starve_s` (they count as the top class this cycle)."""
    cls = c.priority[c.eligible]
    if cls.size == 0 or cls.min() == cls.max():
        return None
    waited = now_s - np.where(np.isnan(c.waiting_since_s), now_s, c.waiting_since_s)
    starved: BoolArray = c.eligible & ~c.running & (waited >= max_starve_s) \
        & (c.priority < cls.max())  # the top class has no one to be starved by
    return starved


def _passes(
    c: Candidates,
    order: IntArray,
    room_a: FloatArray,
    rotating: BoolArray,
    hysteresis_a: float,
    free: BoolArray,
) -> tuple[BoolArray, FloatArray]:
    admitted = np.zeros(len(c.eligible), dtype=bool)
    rem = room_a.astype(np.float64).copy()
    go = rotating | c.yielding
    first = (c.running | c.in_welcome) & ~go
    passes = (
        (c.eligible & first, 0.0),
        (c.eligible & ~first & ~c.running & (c.lender | free), 0.0),
        (c.eligible & ~first & ~c.running & ~c.lender & ~free & c.new, 0.0),
        (c.eligible & ~first & ~c.running & ~c.lender & ~c.new & ~free & ~c.in_min_pause,
         hysteresis_a),
        (c.eligible & c.running & go & ~first, 0.0),
    )
    for group, slack in passes:
        _greedy(order[group[order]], slack, rem, admitted, c)
    return admitted, rem


def _greedy(idx: IntArray, slack: float, rem: FloatArray, admitted: BoolArray,
            c: Candidates) -> None:
    """Admit rows of `idx` in order while each fits with `slack` to spare; updates `rem`
    and `admitted`.

    A charger's two connectors sharing a phase need 2 x 6 A + `slack` under the
    Charger Current Limit; when they cannot both have it, the later one is deferred and
    only tried if the earlier one was refused by a phase.
    """
    if idx.size == 0:
        return
    p = c.partner[idx]
    has_p = p >= 0
    safe_p = np.where(has_p, p, idx)
    shares = has_p & (c.loads[idx] & c.loads[safe_p]).any(axis=1)
    tight = shares & (c.charger_limit_a[idx] < 2 * MIN_CURRENT_A + slack - _EPS)
    blocked = tight & admitted[safe_p]
    pos = np.full(len(admitted), -1, dtype=np.int64)
    pos[idx] = np.arange(idx.size)
    deferred = tight & ~blocked & (pos[safe_p] >= 0) & (pos[safe_p] < pos[idx])
    _prefix_greedy(idx[~blocked & ~deferred], slack, rem, admitted, c.loads)
    later = idx[deferred]
    _prefix_greedy(later[~admitted[c.partner[later]]], slack, rem, admitted, c.loads)


def _prefix_greedy(idx: IntArray, slack: float, rem: FloatArray, admitted: BoolArray,
                   loads: BoolArray) -> None:
    """Greedy admission by prefix sums: each refusal fills at least one phase for every
    later candidate of this pass (they all need the same), so it loops at most 4 times."""
    need = MIN_CURRENT_A
    while idx.size:
        mine = loads[idx]
        cum = np.cumsum(mine * need, axis=0)
        over = ((cum + slack > rem + _EPS) & mine).any(axis=1)
        if not np.count_nonzero(over):
            admitted[idx] = True
            rem -= cum[-1]
            return
        k = int(np.argmax(over))
        admitted[idx[:k]] = True
        if k:
            rem -= cum[k - 1]
        full = rem < need + slack - _EPS
        rest = idx[k + 1 :]
        idx = rest[~(loads[rest][:, full]).any(axis=1)]


def _rotation(c: Candidates, admitted: BoolArray, now_s: float, period_s: float,
              min_run_s: float) -> BoolArray:
    """The running connectors to rotate out so waiting ones get a turn."""
    rotating = np.zeros(len(admitted), dtype=bool)
    waited = now_s - np.where(np.isnan(c.waiting_since_s), now_s, c.waiting_since_s)
    due = c.eligible & ~c.running & ~c.in_min_pause & ~admitted & (waited >= period_s)
    if not np.count_nonzero(due):
        return rotating
    ran = now_s - np.where(np.isnan(c.running_since_s), now_s, c.running_since_s)
    can_go = np.flatnonzero(admitted & c.running & (ran >= max(period_s, min_run_s))
                            & _settled(c, now_s, min_run_s))
    if can_go.size == 0:
        return rotating
    longest_first = can_go[np.argsort(-ran[can_go], kind="stable")]
    rotating[longest_first[: int(due.sum())]] = True
    return rotating


def _class_rotation(c: Candidates, admitted: BoolArray, now_s: float, period_s: float,
                    min_run_s: float, starved: BoolArray) -> BoolArray:
    """Rotation with priority classes: each waiting connector left out, highest class
    first, may pause one running connector: of a lower class that has run min_run_s
    (pre-emption; a starved one counts as the top class), or of its own class that has
    run a rotation period and min_run_s (its rotation turn). Lowest class first, then
    the longest running."""
    rotating = np.zeros(len(admitted), dtype=bool)
    waited = now_s - np.where(np.isnan(c.waiting_since_s), now_s, c.waiting_since_s)
    ran = now_s - np.where(np.isnan(c.running_since_s), now_s, c.running_since_s)
    left = c.eligible & ~c.running & ~c.in_min_pause & ~admitted
    if not np.count_nonzero(left):
        return rotating
    runners = np.flatnonzero(admitted & c.running & (ran >= min_run_s)
                             & _settled(c, now_s, min_run_s))
    if runners.size == 0:
        return rotating
    runners = runners[np.lexsort((-ran[runners], c.priority[runners]))]
    waiters = np.flatnonzero(left)
    waiters = waiters[np.lexsort((-waited[waiters], -c.priority[waiters]))]
    for j in waiters:
        turn = waited[j] >= period_s
        for v in runners:
            if rotating[v]:
                continue
            lower = c.priority[v] < c.priority[j]
            if lower or (turn and c.priority[v] == c.priority[j]
                         and ran[v] >= max(period_s, min_run_s)):
                rotating[v] = True
                break
    return rotating
