"""`io7ctl`: the installer's and operator's client of a master's GroupAdmin service.

    io7ctl --master 10.0.0.10:50051 status [--json]
    io7ctl --master ... watch [--json] [--count N]
    io7ctl --master ... rebuild [--json]
    io7ctl --master ... set-limit 80 [--json]

`status` answers "is everyone online, is the connection safe, why is my car slow?": per
phase the limit, CT reading, other load, reservations for offline members, what is
available and what is allocated; per connector its state, offer, measured draw and the
reason it got what it got. `--json` prints the GroupStatus as JSON (protobuf field names).
Exit codes: 0 ok, 1 the master refused the request, 2 the master is unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc

DEADLINE_S = 5.0


def _name(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _phase(value: int) -> str:
    return "" if value == pb.PHASE_UNSPECIFIED else pb.Phase.Name(value).removeprefix("PHASE_")


def render(status: pb.GroupStatus) -> str:
    """A GroupStatus as the table a person reads."""
    mode = _name(pb.LoadBalancingMode, status.mode, "LOAD_BALANCING_MODE_")
    ct = _name(pb.CtStatus, status.ct_status, "CT_STATUS_")
    out = [f"group {status.group}  master {status.master_id}  term {status.term}  "
           f"cycle {status.cycle} ({status.cycle_duration_ms:.1f} ms)  mode {mode}  ct {ct}"]
    if status.ct_fault:
        out.append(f"  FAULT: {status.ct_fault}")
    out.append("")
    out.append("phase   limit A   CT A  other A  offline A  available A  allocated A")
    for p in status.phases:
        ct_a = f"{p.ct_a:6.1f}" if p.HasField("ct_a") else "     -"
        out.append(f"{_phase(p.phase):5} {p.limit_a:9.1f} {ct_a} {p.other_load_a:8.1f} "
                   f"{p.reserved_offline_a:10.1f} {p.available_a:12.1f} {p.allocated_a:12.1f}")
    out.append("")
    out.append("charger      online  conn  status          offered A  allocated A  "
               "measured A (L1/L2/L3)  reason")
    for m in status.members:
        online = "yes" if m.online else "NO"
        if not m.connectors:
            out.append(f"{m.charger_id:12} {online:6}")
        for c in m.connectors:
            st = _name(pb.ConnectorStatus, c.status, "CONNECTOR_STATUS_")
            meas = (f"{c.measured_a.l1:5.1f}/{c.measured_a.l2:5.1f}/{c.measured_a.l3:5.1f}"
                    if c.HasField("measured_a") else "      -")
            why = _name(pb.LimitReason, c.reason, "LIMIT_REASON_")
            ph = _phase(c.limiting_phase)
            out.append(f"{m.charger_id:12} {online:6} {c.connector_id:5}  {st:15} "
                       f"{c.offered_a:9.1f} {c.allocated_a:12.1f}  {meas:21}  "
                       f"{why}{' ' + ph if ph else ''}")
    return "\n".join(out)


def _dump(msg: Any) -> str:
    return json.dumps(MessageToDict(msg, preserving_proto_field_name=True,
                                    always_print_fields_with_no_presence=True))


async def _run(args: argparse.Namespace) -> int:
    async with grpc.aio.insecure_channel(args.master) as channel:
        admin = pb_grpc.GroupAdminStub(channel)  # type: ignore[no-untyped-call]
        if args.command == "status":
            status = await admin.GetStatus(pb.GetStatusRequest(), timeout=DEADLINE_S)
            print(_dump(status) if args.json else render(status))
        elif args.command == "watch":
            n = 0
            request = pb.WatchStatusRequest(min_interval_ms=args.interval_ms)
            async for status in admin.WatchStatus(request):
                if args.json:
                    print(_dump(status), flush=True)
                else:
                    print("\x1b[2J\x1b[H" + render(status), flush=True)
                n += 1
                if args.count and n >= args.count:
                    break
        elif args.command == "rebuild":
            resp = await admin.RebuildGroup(pb.RebuildGroupRequest(), timeout=DEADLINE_S)
            print(_dump(resp) if args.json else
                  f"removed: {', '.join(resp.removed_charger_ids) or '-'}\n"
                  f"kept: {', '.join(resp.kept_charger_ids) or '-'}")
        elif args.command == "set-limit":
            resp = await admin.SetGroupLimit(pb.SetGroupLimitRequest(limit_a=args.limit_a),
                                             timeout=DEADLINE_S)
            print(_dump(resp) if args.json else
                  f"group limit {resp.limit_a:g} A per phase (was {resp.previous_limit_a:g} A)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="io7ctl", description=__doc__.split("\n\n")[0])
    ap.add_argument("--master", default="127.0.0.1:50051", help="host:port of the master")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, text in (("status", "the group now"), ("watch", "the group, live"),
                       ("rebuild", "forget members not connected now (manual 6.4.2)"),
                       ("set-limit", "set the group limit, A per phase")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "watch":
            p.add_argument("--count", type=int, default=0, help="stop after N updates")
            p.add_argument("--interval-ms", type=int, default=1000)
        if name == "set-limit":
            p.add_argument("limit_a", type=float)
    args = ap.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except grpc.aio.AioRpcError as err:
        code = err.code()
        print(f"io7ctl: {args.master}: {code.name}: {err.details()}", file=sys.stderr)
        unreachable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return 2 if unreachable else 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
