"""Which master io7ctl asks (master/ctl.py's EPILOG): the address given, or make run's
groups from its run file, each group's members asked in turn (issue 13: only the elected
io7d serves its master; the others refuse the connection), and the one-line errors when
none answers. Exit codes are io7ctl's."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from master import ctltls, runfile

DEFAULT_MASTER = "127.0.0.1:50051"  # a master on this host, deploy/'s port
ENV_MASTER = "IO7CTL_MASTER"
OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3  # argparse's own errors exit 2 too


class CtlError(Exception):
    """One line for stderr and the exit code that goes with it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Target:
    """A master to ask: the first of `addresses` whose master answers (a group's
    members, only the elected one serves), and where they came from (said in messages)."""

    addresses: tuple[str, ...]
    source: str
    group: str = ""  # make run's group name ("": an address given by hand)


READ_ONLY = ("status", "watch", "security-log")  # safe to ask another member after a timeout


def check_address(address: str, where: str) -> str:
    """`address` if it is host:port (IPv6 in brackets); else CtlError(USAGE) saying why."""
    host, sep, port = address.rpartition(":")
    if not sep or not port or address.endswith("]"):
        problem = "has no port"
    elif not host:
        problem = "has no host"
    elif any(c.isspace() for c in host) or (":" in host and not (
            host.startswith("[") and host.endswith("]"))):
        problem = "is not a host and port (an IPv6 address goes in brackets: [::1]:50051)"
    elif not port.isdigit() or not 1 <= int(port) <= 65535:
        problem = "needs a port 1-65535"
    else:
        return address
    raise CtlError(USAGE, f"{where} {address!r} {problem}: give host:port, e.g. "
                          f"{DEFAULT_MASTER}")


def targets(args: argparse.Namespace, cwd: Path, env: dict[str, str] | os._Environ[str]
            ) -> list[Target]:
    """The masters this command goes to, by the order EPILOG states. Raises CtlError."""
    explicit = [(args.master, "--master"), (env.get(ENV_MASTER), f"${ENV_MASTER}")]
    for address, where in explicit:
        if address:
            if args.group:
                raise CtlError(USAGE, f"give {where} or --group, not both: --group picks "
                                      f"one of make run's masters ({runfile.RUN_FILE})")
            # a group's members, comma-separated: asked in turn (only the leader serves)
            members = tuple(check_address(a.strip(), where) for a in address.split(","))
            return [Target(members, where, "given" if len(members) > 1 else "")]
    path = runfile.find(cwd)
    if path is None:
        if args.group:
            raise CtlError(USAGE, f"--group {args.group}: no {runfile.RUN_FILE} here or in "
                                  "a parent folder: run io7ctl where make run runs, or give "
                                  "--master HOST:PORT")
        return [Target((DEFAULT_MASTER,), f"the default: no --master, ${ENV_MASTER} or "
                                          f"{runfile.RUN_FILE} here")]
    try:
        park = runfile.read(path)
    except runfile.RunFileError as err:
        raise CtlError(UNREACHABLE, str(err)) from err
    groups = list(park.groups)
    if not groups:
        raise CtlError(UNREACHABLE, f"{path}: this car park (scenario {park.scenario}) runs "
                                    f"no master (agent-only mode): its log is in {park.logs}")
    if args.group:
        groups = [g for g in groups if g.group == args.group]
        if not groups:
            raise CtlError(USAGE, f"--group {args.group!r} is not one of make run's groups "
                                  f"{[g.group for g in park.groups]} ({path})")
    if len(groups) > 1 and args.command != "status":
        listed = ", ".join(g.group for g in groups)
        raise CtlError(USAGE, f"{path} lists {len(groups)} groups ({listed}): choose one "
                              "with --group NAME, or --master HOST:PORT")
    return [Target(g.addresses, f"group {g.group} in {path}", g.group) for g in groups]


def explain(err: grpc.aio.AioRpcError, address: str, target: Target, command: str,
            tls_source: str = ctltls.NO_CERTIFICATE) -> CtlError:
    """A gRPC failure at `address` as one line: nobody answers or the TLS handshake
    failed (3), or the master said no (1), with its reason (e.g. a viewer's role)."""
    hint = ctltls.unavailable_hint(err.details() or "", tls_source)
    if err.code() is grpc.StatusCode.UNAVAILABLE and hint:
        return CtlError(UNREACHABLE, f"no TLS session with {address}: {hint}")
    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CtlError(UNREACHABLE, f"no master answers at {address}: is io7-master "
                                     f"running? (address from {target.source}; make run "
                                     f"writes its masters' addresses to {runfile.RUN_FILE})")
    details = " ".join((err.details() or "").split())
    return CtlError(REFUSED, f"the master at {address} refused {command}: "
                             f"{err.code().name}: {details}")


def leaderless(target: Target, errors: list[tuple[str, grpc.aio.AioRpcError]],
               command: str, tls_source: str) -> CtlError:
    """No member of a group answered: a TLS failure if one was (fix the certificate),
    else the group has no master now (3)."""
    for address, err in errors:
        if ctltls.unavailable_hint(err.details() or "", tls_source) and \
                err.code() is grpc.StatusCode.UNAVAILABLE:
            return explain(err, address, target, command, tls_source)
    if len(target.addresses) == 1:
        return explain(errors[-1][1], target.addresses[0], target, command, tls_source)
    return CtlError(UNREACHABLE, f"group {target.group} has no master now: none of its "
                                 f"{len(target.addresses)} members answers "
                                 f"({', '.join(target.addresses)}): an election is in "
                                 "progress (retry in a few seconds) or fewer than a majority "
                                 f"of its chargers run (addresses from {target.source})")


def next_member(err: grpc.aio.AioRpcError, command: str) -> bool:
    """Whether a failure means "this member does not lead: ask the next": its port
    refuses (UNAVAILABLE), or a read timed out (a write is never sent twice)."""
    return err.code() is grpc.StatusCode.UNAVAILABLE or (
        err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and command in READ_ONLY)
