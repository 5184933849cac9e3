"""`io7ctl`: the installer's and operator's client of a master's GroupAdmin service.

    io7ctl status                 # next to `make run`: finds its masters by itself
    io7ctl --master 10.0.0.10:50051 status [--json]
    io7ctl --master 10.0.0.11:50051,10.0.0.12:50051,10.0.0.13:50051 status  # io7d members
    io7ctl --master ... watch [--json] [--count N]
    io7ctl --master ... rebuild [--removed ID ...] [--json]
    io7ctl --master ... set-limit 80 [--json]    # at most the installed limit
    io7ctl --master ... admit ID [--json]        # let charger ID join a closed group
    io7ctl --master ... security-log [-n N] [--json]
    io7ctl --pki-dir ~/io7/operators/alice ...   # mutual TLS (master/ctltls.py)

A group of io7d (one per charger, issue 13) has its master wherever it was elected:
io7ctl asks the members the run file lists in turn and uses the first whose master
answers (the others refuse the connection: they do not lead). When none answers, the
group has no master now (an election in progress, or no majority of its chargers up).

`status` answers "is everyone online, is the connection safe, why is my car slow?": per
phase the limit, CT reading, other load, reservations for offline members, what is
available and what is allocated; per connector its state, offer, measured draw and the
reason it got what it got, in master/statuswords.py's words (the web UI's and MQTT's).
`--json` prints the GroupStatus as JSON (protobuf field names). The master's address and the
exit codes: see EPILOG (`io7ctl --help`). Every error is one line on stderr saying what
to do, never a traceback or a raw gRPC dump.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from master import ctltls, runfile
from master.ctlfind import (
    DEFAULT_MASTER,
    ENV_MASTER,
    OK,
    REFUSED,
    USAGE,
    CtlError,
    Target,
    explain,
    leaderless,
    next_member,
    targets,
)
from master.statusdelta import DeltaReader
from master.statuswords import connector_reason, phase_limited_by, phase_name
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.tls import TlsMaterial

DEADLINE_S = 5.0
WIDTH = 118  # status rows fit a 120-column terminal; a long reason wraps
FOLLOW_S = 30.0  # watch: how long a group may be without a master before io7ctl gives up
EPILOG = f"""where the master is (the first that applies):
  {"--master HOST:PORT":20} that master; HOST:PORT,HOST:PORT,...: a group's io7d members,
  {"":20} asked in turn (only the elected one serves its master)
  {"$" + ENV_MASTER:20} HOST:PORT, when --master is not given
  {runfile.RUN_FILE!s:20} make run's groups, looked for in this folder and its
  {"":20} parents: each group's members are asked in turn, the elected
  {"":20} master answers; with several groups (scenario C) status shows
  {"":20} them all and the other commands need --group NAME
  {DEFAULT_MASTER:20} otherwise: a master on this host

your certificate (mutual TLS): --pki-dir DIR, else --ca/--cert/--key, else make run's
installer (its run file), else none (only a plaintext master answers); master/ctltls.py

exit codes: 0 ok; 1 the master refused the request (with its reason, e.g. a viewer's
role); 2 usage error (bad arguments, address or certificate files, several masters and
no --group); 3 no master answers (not running, not reachable, make run's car park has
stopped) or the TLS handshake failed (it says which certificate to check)"""


class StreamBroken(Exception):
    """A watch that had printed `shown` updates lost its master: one address given, that
    is the end; a group's members (io7d), it follows the takeover (`_follow`)."""

    def __init__(self, err: grpc.aio.AioRpcError, shown: int = 0) -> None:
        super().__init__(str(err))
        self.err = err
        self.shown = shown


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def safe(text: str) -> str:
    """`text` with every non-printable character escaped as in a Python literal (\\n,
    \\x1b, \\u202e): what a master or an agent sent can never move the cursor, clear a
    line or forge one."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _grouped(phases: Any, limited: dict[Any, str]) -> dict[tuple[float, float, str], str]:
    """Phases whose limit is lowered, by (in force, configured, why): "L1 L2"."""
    out: dict[tuple[float, float, str], str] = {}
    for p in phases:
        if limited[p.phase]:
            key = (p.limit_a, p.configured_limit_a, limited[p.phase])
            out[key] = f"{out[key]} {phase_name(p.phase)}" if key in out else phase_name(p.phase)
    return out


def render(status: pb.GroupStatus) -> str:
    """A GroupStatus as the table a person reads. Every text from the wire goes through
    `safe`."""
    mode = _name(pb.LoadBalancingMode, status.mode, "LOAD_BALANCING_MODE_")
    ct = _name(pb.CtStatus, status.ct_status, "CT_STATUS_")
    out = [f"group {safe(status.group)}  master {safe(status.master_id)}  term {status.term}  "
           f"cycle {status.cycle} ({status.cycle_duration_ms:.1f} ms)  mode {mode}  ct {ct}"]
    if status.ct_fault:
        out.append(f"  FAULT: {safe(status.ct_fault)}")
    out.append("")
    out.append("phase   limit A   CT A  other A  offline A  available A  allocated A")
    for p in status.phases:
        ct_a = f"{p.ct_a:6.1f}" if p.HasField("ct_a") else "     -"
        out.append(f"{phase_name(p.phase):5} {p.limit_a:9.1f} {ct_a} {p.other_load_a:8.1f} "
                   f"{p.reserved_offline_a:10.1f} {p.available_a:12.1f} {p.allocated_a:12.1f}")
    limited = {p.phase: safe(phase_limited_by(p)) for p in status.phases}
    for (in_force, configured, why), phases in _grouped(status.phases, limited).items():
        out.append(f"  limit in force {in_force:.1f} A per phase, configured {configured:.1f} A"
                   f" ({why}){'' if len(status.phases) < 2 else ': ' + phases}")
    for e in status.external_limits:
        out.append(f"  external limit: {safe(e.source)}, "
                   + ", ".join(f"{phase_name(p.phase)} {p.limit_a:.1f} A" for p in e.phases))
    out.append("")
    out.extend(_connector_table(status))
    return "\n".join(out)


def _connector_table(status: pb.GroupStatus) -> list[str]:
    """One row per connector, its reason last in statuswords' words (the web UI's and
    MQTT's), wrapped under the reason column so that a row stays within WIDTH."""
    idw = max([len("charger"), *(len(safe(m.charger_id)) for m in status.members)])
    head = (f"{'charger':{idw}} online conn status         offer A alloc A  "
            "measured L1/L2/L3  reason")
    out = [head]
    for m in status.members:
        online, cid = "yes" if m.online else "NO", safe(m.charger_id)
        if not m.connectors:
            out.append(f"{cid:{idw}} {online:6}")
        for c in m.connectors:
            st = _name(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_")
            meas = (f"{c.measured_a.l1:4.1f}/{c.measured_a.l2:4.1f}/{c.measured_a.l3:4.1f}"
                    if c.HasField("measured_a") else "-")
            row = (f"{cid:{idw}} {online:6} {c.connector_id:4} {st:14} {c.offered_a:7.1f} "
                   f"{c.allocated_a:7.1f}  {meas:17}  ")
            why = textwrap.wrap(safe(connector_reason(status, c)) or "-",
                                max(WIDTH - len(row), 30), break_on_hyphens=False)
            out.append(row + why[0])
            out.extend(" " * len(row) + more for more in why[1:])
        if m.offline_reason:
            out.append(f"{'':{idw}} offline: {safe(m.offline_reason)}")
        if m.limits_refused_reason:
            out.append(f"{'':{idw}} refuses this master's limits: "
                       f"{safe(m.limits_refused_reason)}")
    return out


REBUILD_HELP = """Rebuild the group (manual 6.4.2): forget chargers physically removed.

  io7ctl rebuild                 forgets nothing: lists the offline members, each of
                                 which keeps its fail-safe reservation
  io7ctl rebuild --removed ID    forgets charger ID (repeat for more), which you confirm
                                 was physically removed or switched off for good: its
                                 reservation is released and the others may use it

The master cannot tell a removed charger from one whose link is cut: a cut-off charger
still draws its last limit until its lease runs out, then its fail-safe current, so only
the chargers you name are forgotten. Naming a charger that is connected is refused (it
stays; exit code 1); naming one that is not a member is an error and removes nothing."""
OFFLINE_HINT = ("an offline charger keeps its fail-safe reservation until you confirm it "
                "was physically removed: io7ctl rebuild --removed ID")


def render_rebuild(named: list[str], resp: pb.RebuildGroupResponse) -> tuple[str, list[str]]:
    """A RebuildGroupResponse as lines for a person, and one refusal line per named
    charger the master kept because it is connected."""
    out = [f"removed: {', '.join(map(safe, resp.removed_charger_ids)) or '-'}",
           f"kept: {', '.join(map(safe, resp.kept_charger_ids)) or '-'}"]
    offline = [safe(cid) for cid in resp.offline_kept_charger_ids]
    out.append(f"offline, still reserved: {', '.join(offline)}" if offline
               else "offline, still reserved: - (no offline member)")
    if offline:
        out.append(OFFLINE_HINT)
    refused = [f"{safe(cid)} is connected, so it was not removed: disconnect it first if it is "
               "being removed" for cid in dict.fromkeys(named) if cid in resp.kept_charger_ids]
    return "\n".join(out), refused


def render_security_log(resp: pb.GetSecurityLogResponse) -> str:
    """The security log's entries, oldest first, one line each; every field from the wire
    goes through `safe`."""
    if not resp.events:
        return "the security log is empty"
    return "\n".join(
        f"{safe(e.time_utc)}  {safe(e.kind):18} {safe(e.who) or '-'}  "
        f"{safe(e.detail)}{f'  (peer {safe(e.peer)})' if e.peer and e.peer != e.who else ''}"
        for e in resp.events)


def _dump(msg: Any) -> str:
    out = MessageToDict(msg, preserving_proto_field_name=True,
                        always_print_fields_with_no_presence=True)
    if isinstance(msg, pb.GroupStatus):  # the stream's delta marks: never in a whole status
        out.pop("delta", None)
        out.pop("removed_member_ids", None)
    return json.dumps(out)


async def _follow(args: argparse.Namespace, target: Target, tls: TlsMaterial | None,
                  tls_source: str) -> int:
    """`watch` on a group's members: when its master goes (killed, or no longer elected),
    keep asking the members until the new one answers, for up to FOLLOW_S, and go on
    watching it (--count counts every update shown)."""
    lost_at: float | None = None
    while True:
        try:
            return await _ask(args, target, tls, tls_source, follow=False)
        except StreamBroken as broken:
            if args.count:
                args.count = max(1, args.count - broken.shown)
            lost_at = time.monotonic()
            if not args.json:
                print(f"\nthe master stopped answering ({broken.err.code().name}): asking "
                      f"the members of {target.source} for the new one", flush=True)
        except CtlError:
            if lost_at is None or time.monotonic() - lost_at > FOLLOW_S:
                raise
        await asyncio.sleep(0.5)


async def _ask(args: argparse.Namespace, target: Target, tls: TlsMaterial | None,
               tls_source: str, *, follow: bool = True) -> int:
    """The command at the first of the target's addresses whose master answers.
    Raises CtlError when none does, or when one refuses."""
    if follow and args.command == "watch" and len(target.addresses) > 1:
        return await _follow(args, target, tls, tls_source)
    errors: list[tuple[str, grpc.aio.AioRpcError]] = []
    for address in target.addresses:
        try:
            return await _run(args, address, tls)
        except StreamBroken as broken:
            if not follow:
                raise
            raise explain(broken.err, address, target, args.command, tls_source) from None
        except grpc.aio.AioRpcError as err:
            if not next_member(err, args.command):
                raise explain(err, address, target, args.command, tls_source) from None
            errors.append((address, err))
    raise leaderless(target, errors, args.command, tls_source)


async def _run(args: argparse.Namespace, address: str, tls: TlsMaterial | None) -> int:
    head = f"master at {address}\n"  # so the operator can name it with --master
    async with ctltls.open_channel(address, tls) as channel:
        admin = pb_grpc.GroupAdminStub(channel)  # type: ignore[no-untyped-call]
        if args.command == "status":
            status = await admin.GetStatus(pb.GetStatusRequest(), timeout=DEADLINE_S)
            print(_dump(status) if args.json else head + render(status), flush=True)
        elif args.command == "watch":
            n = 0
            # deltas: at 1 000 chargers only what changed travels (master/statusdelta.py);
            # not for --json, whose every line is the master's whole status, ages included
            request = pb.WatchStatusRequest(min_interval_ms=args.interval_ms,
                                            deltas=not args.json)
            reader = DeltaReader()
            try:
                async for msg in admin.WatchStatus(request):
                    status = reader.apply(msg)
                    if args.json:
                        print(_dump(status), flush=True)
                    else:
                        print("\x1b[2J\x1b[H" + head + render(status), flush=True)
                    n += 1
                    if args.count and n >= args.count:
                        break
            except grpc.aio.AioRpcError as err:
                if n:
                    raise StreamBroken(err, n) from None
                raise
        elif args.command == "rebuild":
            resp = await admin.RebuildGroup(
                pb.RebuildGroupRequest(removed_charger_ids=args.removed), timeout=DEADLINE_S)
            text, refused = render_rebuild(args.removed, resp)
            print(_dump(resp) if args.json else text, flush=True)
            for line in refused:
                print(f"io7ctl: {line}", file=sys.stderr)
            return REFUSED if refused else OK
        elif args.command == "set-limit":
            resp = await admin.SetGroupLimit(pb.SetGroupLimitRequest(limit_a=args.limit_a),
                                             timeout=DEADLINE_S)
            print(_dump(resp) if args.json else
                  f"group limit {resp.limit_a:g} A per phase (was {resp.previous_limit_a:g} A; "
                  f"installed {resp.installed_limit_a:g} A)")
        elif args.command == "admit":
            admitted = await admin.AdmitMember(pb.AdmitMemberRequest(charger_id=args.id),
                                               timeout=DEADLINE_S)
            cid = safe(admitted.charger_id)
            print(_dump(admitted) if args.json else
                  f"{cid} admitted: it joins at its next Hello" if admitted.admitted else
                  f"{cid} was a member or admitted already: nothing changed")
        elif args.command == "security-log":
            events = await admin.GetSecurityLog(
                pb.GetSecurityLogRequest(max_entries=args.n), timeout=DEADLINE_S)
            print(_dump(events) if args.json else render_security_log(events), flush=True)
    return 0


def _entries(text: str) -> int:
    """-n of security-log: 1 to 10000 (the master serves at most that many)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of entries 1-10000")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7ctl", description=__doc__.split("\n\n")[0],
                                 epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--master", metavar="HOST:PORT",
                    help=f"the master, or an io7d group's members comma-separated, asked "
                    f"in turn (default: ${ENV_MASTER}, else make run's, else "
                    f"{DEFAULT_MASTER})")
    ap.add_argument("--group", metavar="NAME",
                    help="which of make run's masters (scenario C runs one per phase)")
    ctltls.add_arguments(ap)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, text in (("status", "the group now"), ("watch", "the group, live"),
                       ("rebuild", "forget chargers you name as physically removed "
                                   "(manual 6.4.2); with no --removed: list offline ones"),
                       ("set-limit", "lower the group limit for a while, A per phase "
                                     "(never above the installed limit)"),
                       ("admit", "admit charger ID to the group (a closed group refuses "
                                 "chargers nobody admitted)"),
                       ("security-log", "the master's security log, newest last")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "watch":
            p.add_argument("--count", type=int, default=0, help="stop after N updates")
            p.add_argument("--interval-ms", type=int, default=1000)
        if name == "set-limit":
            p.add_argument("limit_a", type=float)
        if name == "admit":
            p.add_argument("id", metavar="ID", help="the charger id ([charger] id in its "
                           "config; a refused one is in io7ctl security-log)")
        if name == "security-log":
            p.add_argument("-n", type=_entries, default=50, metavar="N",
                           help="the newest N entries (default 50)")
        if name == "rebuild":
            p.description = REBUILD_HELP
            p.formatter_class = argparse.RawDescriptionHelpFormatter
            p.add_argument("--removed", metavar="ID", action="append", default=[],
                           help="a charger you confirm was physically removed (repeat "
                           "for more): forgotten, its reservation released")
    args = ap.parse_args(argv)
    worst = OK
    try:
        try:
            tls, tls_source = ctltls.client_tls(args, Path.cwd())
        except ctltls.CtlTlsError as err:
            raise CtlError(USAGE, str(err)) from None
        for n, target in enumerate(targets(args, Path.cwd(), os.environ)):
            if n and not args.json:
                print()
            try:
                worst = max(worst, asyncio.run(_ask(args, target, tls, tls_source)))
            except CtlError as problem:  # status of several groups: say, go on
                print(f"io7ctl: {problem}", file=sys.stderr)
                worst = max(worst, problem.code)
    except CtlError as err:
        print(f"io7ctl: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        return OK
    return worst


if __name__ == "__main__":
    sys.exit(main())
