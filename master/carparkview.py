"""`make run`'s live view: every group's elected master, its status, the OCPP links.

1. A group of io7d has its master wherever it was elected, and only there does a
   GroupAdmin answer (the other members refuse the connection). Each frame asks the
   members in turn, from the one that answered last, and shows the first answer:
   "master io7-02 (term 7)" with that io7d's pid, so `kill -9 <pid>` shows a takeover.
2. When none answers, the group has no master: "no master (election)", with the seconds
   since the last one answered. The next master that answers is shown with what it took
   over from (the previous master and term) and how long the group had none, as seen by
   this view (a frame a second: a bound to the second, not a measurement).
3. A member whose channel failed gets a new channel at its next turn: a gRPC channel
   backs off for up to minutes after refused connections, and the member may have been
   elected meanwhile.
4. Scenario A has no group: its frame is the lone agent's latest offers from its log.
5. Every io7d's web UI URL and its installer password file close each frame.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from master import carparkpki, ctltls, runfile
from master.ctl import render
from master.pki import Pki
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsFiles, TlsMaterial, load_tls

ASK_TIMEOUT_S = 1.5  # a refused port fails at once; this bounds a member that hangs
FRAME_S = 1.0


class OcppLinks:
    """Each charger's latest "ocpp link" state, read from the new part of its log."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.read_to: dict[str, int] = {}
        self.state: dict[str, str] = {}

    def frame(self, agents: list[str], csms_url: str | None) -> str:
        for cid in agents:
            self._read(cid)
        cells = [f"{cid} {self.state.get(cid, 'starting')}" for cid in agents]
        return f"OCPP 1.6J back office {csms_url}:\n  " + "  ".join(cells)

    def _read(self, cid: str) -> None:
        path = self.dir / f"{cid}.log"
        if not path.exists():
            return
        with path.open("rb") as f:
            f.seek(self.read_to.get(cid, 0))
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits
        self.read_to[cid] = self.read_to.get(cid, 0) + len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith("{") and '"event": "ocpp link"' in line:
                self.state[cid] = str(json.loads(line).get("state", "?"))


class Parked(Protocol):
    """What the view reads of the car park (master/carpark.Park)."""

    dir: Path
    pki: Pki | None
    agents: list[str]
    csms_url: str | None
    links: OcppLinks
    procs: list[tuple[str, subprocess.Popen[bytes]]]
    web: dict[str, str]  # charger id -> its web UI's URL


@dataclass(frozen=True, slots=True)
class Leader:
    master_id: str
    term: int


class GroupWatch:
    """Rules 1-3 for one group."""

    def __init__(self, group: runfile.RunGroup, tls: TlsMaterial | None) -> None:
        self.group = group
        self.tls = tls
        self.channels: list[grpc.aio.Channel | None] = [None] * len(group.members)
        self.first = 0  # the member that answered last: asked first
        self.shown: Leader | None = None
        self.previous: Leader | None = None  # the master before `shown`
        self.lost_at: float | None = None  # when the shown master stopped answering
        self.gap_s: float | None = None  # how long the group had no master before `shown`

    async def ask(self) -> tuple[runfile.RunMember, pb.GroupStatus] | None:
        """The first member, from the last that answered, whose master answers."""
        n = len(self.group.members)
        for k in range(n):
            i = (self.first + k) % n
            member = self.group.members[i]
            channel = self.channels[i]
            if channel is None:
                channel = self.channels[i] = ctltls.open_channel(member.address, self.tls)
            stub = pb_grpc.GroupAdminStub(channel)  # type: ignore[no-untyped-call]
            try:
                status = await stub.GetStatus(pb.GetStatusRequest(), timeout=ASK_TIMEOUT_S)
            except grpc.aio.AioRpcError:
                self.channels[i] = None  # rule 3
                await channel.close()
                continue
            self.first = i
            return member, status
        return None

    async def frame(self, park: Parked, now: float) -> str:
        found = await self.ask()
        name = self.group.group
        if found is None:
            if self.shown is not None and self.lost_at is None:
                self.lost_at = now
            since = "" if self.lost_at is None or now - self.lost_at < 1.0 else \
                f" for {now - self.lost_at:.0f} s"
            n = len(self.group.members)
            return (f"group {name}: no master (election){since}: no member's master answers;"
                    f" a majority ({n // 2 + 1} of {n}) of its io7d elects one within seconds"
                    + _exited(park, self.group))
        member, status = found
        leader = Leader(status.master_id, status.term)
        if leader != self.shown:
            self.previous = self.shown
            self.gap_s = None if self.lost_at is None else now - self.lost_at
            self.shown = leader
        self.lost_at = None
        pid = _pid(park, member.charger_id)
        line = (f"group {name}: master {leader.master_id} (term {leader.term}) at "
                f"{member.address}" + (f", io7d pid {pid} (kill -9 {pid} to watch a "
                                       "takeover)" if pid else ""))
        if self.previous is not None:
            gap = "" if self.gap_s is None else f" after {self.gap_s:.0f} s without a master"
            was = self.previous
            line += (f"\n  elected again (was term {was.term}){gap}"
                     if was.master_id == leader.master_id else
                     f"\n  took over from {was.master_id} (term {was.term}){gap}")
        return line + _exited(park, self.group) + "\n" + render(status)

    async def close(self) -> None:
        for channel in self.channels:
            if channel is not None:
                await channel.close()


def _pid(park: Parked, name: str) -> int | None:
    p = next((p for n, p in park.procs if n == name), None)
    return None if p is None or p.poll() is not None else p.pid


def _exited(park: Parked, group: runfile.RunGroup) -> str:
    """The group's io7d that are no longer running, and how they ended."""
    gone = []
    for name, p in park.procs:
        code = p.poll() if any(m.charger_id == name for m in group.members) else None
        if code is not None:
            how = signal.Signals(-code).name if code < 0 else f"exit code {code}"
            gone.append(f"{name} ({how})")
    return f"\n  io7d stopped: {', '.join(gone)}" if gone else ""


async def run_view(groups: list[runfile.RunGroup], park: Parked, *, clear: bool,
                   seconds: float) -> str:
    """The view until `seconds` have passed (0: no end), SIGTERM or SIGHUP; returns why
    it ended. Inside the event loop the signals set an event (the loop's own handlers),
    so the view's channels close in order; Ctrl-C goes through asyncio.run as usual."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        why.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, on_signal, sig)
    drawing = asyncio.create_task(view(groups, park, clear), name="view")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait({drawing, stopped}, timeout=seconds or None,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (drawing, stopped):
            task.cancel()
        await asyncio.gather(drawing, stopped, return_exceptions=True)
    if drawing in done:
        drawing.result()  # the view ended by itself: only an error does that
    return why[0] if why else f"{seconds:g} s are over"


async def view(groups: list[runfile.RunGroup], park: Parked, clear: bool) -> None:
    """Redraw the car park every second until cancelled."""
    tls = None if park.pki is None else load_tls(TlsFiles.in_folder(
        carparkpki.installer_folder(park.pki)))
    watches = [GroupWatch(g, tls) for g in groups]
    try:
        while True:
            now = time.monotonic()
            frames = [await w.frame(park, now) for w in watches]
            if not watches:
                frames.append(_agent_only_frame(park))
            frames.append(park.links.frame(park.agents, park.csms_url))
            if park.web:
                frames.append(web_lines(park))
            running = sum(p.poll() is None for _, p in park.procs)
            head = (f"io7-cluster car park ({running} processes running, logs in "
                    f"{park.dir}); Ctrl-C stops; io7ctl status from this folder finds the "
                    f"master{'s' if len(groups) > 1 else ''}")
            text = head + "\n\n" + "\n\n".join(frames)
            print(("\x1b[2J\x1b[H" if clear else "\n") + text, flush=True)
            await asyncio.sleep(max(0.0, FRAME_S - (time.monotonic() - now)))
    finally:
        for w in watches:
            await w.close()


def web_lines(park: Parked) -> str:
    """Each charger's web UI and where its installer's first password is (issue 14)."""
    rows = [f"  {cid:12} {url:26} {park.dir / f'state-{cid}' / 'web-initial-password'}"
            for cid, url in park.web.items()]
    return ("web UI (log in as installer with the password in the file; the group "
            "pages are on the master's UI)\n" + "\n".join(rows))


def _agent_only_frame(park: Parked) -> str:
    latest: dict[int, dict[str, object]] = {}
    log = park.dir / "io7-solo.log"
    for line in (log.read_text().splitlines() if log.exists() else []):
        if line.startswith("{") and '"event": "offer"' in line:
            e = json.loads(line)
            latest[int(e["connector_id"])] = e
    rows = [f"  socket {cid}: offered {e['current_a']} A  ({e['source']})"
            for cid, e in sorted(latest.items())]
    return "agent-only io7-solo (site limit 40 A, own CT clamps)\n" + "\n".join(rows)
