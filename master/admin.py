"""GroupAdmin: what io7ctl (and later the web UI) may ask of a running master.

A mixin of `master.service.Master`, sharing its state (control core, membership store,
status, security log); split out of service.py along the seam between the agents'
stream (AgentLink) and the operators' calls.

1. GetStatus and WatchStatus serve the status of the last cycle; WatchStatus sends each
   new cycle's, at most every `min_interval_ms`. Either may leave the members out
   (`summary_only`), and GetStatus may serve one page of them (issue 15: 1 000 chargers).
2. RebuildGroup forgets only the named, unconnected members (membership rule 3).
3. SetGroupLimit may only lower the limit below the installed one (`group.limit_a`).
4. AdmitMember lets a charger join a closed group; GetSecurityLog serves the newest
   security events (master/audit.py). Every change and refusal goes to the security log.
5. With TLS, every call first authenticates its peer (`_authenticate`: the CRL and the
   site, protos/revocation.py) and checks its role (protos.identity.authorise_admin):
   a viewer may GetStatus, WatchStatus and GetSecurityLog; an installer may also
   RebuildGroup, SetGroupLimit and AdmitMember. A charger's certificate is refused:
   chargers talk AgentLink, and a key stolen with a charger must not read the site or
   change it. Refusals are PERMISSION_DENIED with the reason, and a security log line.
   Plaintext (a test bench) checks nothing.
6. Every change is a context-free method (`rebuild_group`, `set_group_limit`,
   `admit_member`) taking the actor (a gRPC context, or audit.Actor for the web API):
   the gRPC methods and master/web/api_group.py call the same code, rules and log lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import NoReturn

import grpc
import structlog

from hw.securitylog import SecurityLog
from master import audit, wire
from master.config import MasterConfig
from master.control import GroupControl
from master.errors import RequestError
from master.membership import MembershipStore, RebuildPlan
from master.statusdelta import DeltaWriter
from master.tlsconfig import ServerTls
from protos.identity import Identity, IdentityError, Role, authorise_admin
from protos.io7.cluster.v1 import cluster_pb2 as pb
from protos.io7.cluster.v1 import cluster_pb2_grpc as pb_grpc
from protos.revocation import PeerRefused, authenticate_peer


class GroupAdminMixin(pb_grpc.GroupAdminServicer):
    """The GroupAdmin methods; `Master` provides the state declared here."""

    config: MasterConfig
    control: GroupControl
    store: MembershipStore
    status_cycle: int  # the cycle of `status`, known without building it

    @property
    def status(self) -> pb.GroupStatus:
        """The last cycle's status (`Master.status` builds it on demand)."""
        raise NotImplementedError
    status_changed: asyncio.Condition
    security: SecurityLog
    log: structlog.stdlib.BoundLogger
    tls: ServerTls | None
    crl_problem: str | None = None  # the last CRL problem logged (said once, not per call)

    async def _refuse(self, context: grpc.aio.ServicerContext, code: grpc.StatusCode,
                      kind: audit.Kind, message: str) -> NoReturn:
        """End this stream or request with `code`, after a security log entry."""
        audit.record(self.security, kind, context, f"{code.name}: {message}")
        await context.abort(code, message)
        raise AssertionError("grpc.aio's abort raises")  # for the type checker

    async def _invalid(self, context: grpc.aio.ServicerContext, message: str) -> NoReturn:
        """INVALID_ARGUMENT for a request the context-free method refused (and logged)."""
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
        raise AssertionError("grpc.aio's abort raises")  # for the type checker

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> Identity | None:
        """The peer's identity (rule 5), None in plaintext; a refused peer's call ends
        here with PERMISSION_DENIED."""
        if self.tls is None:
            return None
        crl = self.tls.crl.current()
        if self.tls.crl.problem != self.crl_problem:
            self.crl_problem = self.tls.crl.problem
            if self.crl_problem:
                self.log.error("the CRL file changed but cannot be used: the last good one "
                               "stays in force", problem=self.crl_problem)
        try:
            return authenticate_peer(context.auth_context(), site=self.tls.site, crl=crl)
        except PeerRefused as err:
            await self._refuse(context, grpc.StatusCode.PERMISSION_DENIED,
                               audit.Kind.TLS_REFUSED, err.reason)

    async def _authorise(self, context: grpc.aio.ServicerContext, needed: Role,
                         call: str) -> None:
        """Nothing if the peer may make `call` (rule 5); else the call ends here."""
        identity = await self._authenticate(context)
        if identity is None:
            return
        try:
            authorise_admin(identity, needed, call)
        except IdentityError as err:
            await self._refuse(context, grpc.StatusCode.PERMISSION_DENIED,
                               audit.Kind.ROLE_REFUSED, str(err))

    async def GetStatus(self, request: pb.GetStatusRequest,
                        context: grpc.aio.ServicerContext) -> pb.GroupStatus:
        await self._authorise(context, Role.VIEWER, "GetStatus")
        r = request
        if not (r.summary_only or r.members_offset or r.members_limit):
            return self.status  # the whole table, as every client asked before issue 15
        return wire.status_page(self.status, summary_only=r.summary_only,
                                offset=r.members_offset, limit=r.members_limit)

    async def WatchStatus(self, request: pb.WatchStatusRequest,
                          context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[pb.GroupStatus]:
        await self._authorise(context, Role.VIEWER, "WatchStatus")
        min_interval = request.min_interval_ms / 1000.0
        deltas = DeltaWriter() if request.deltas and not request.summary_only else None
        seen = -1
        while True:
            async with self.status_changed:
                await self.status_changed.wait_for(
                    lambda last=seen: self.status_cycle != last)  # type: ignore[misc]
                status = self.status
            seen = self.status_cycle
            if request.summary_only:
                yield wire.status_page(status, summary_only=True)
            else:
                yield status if deltas is None else deltas.next(status)
            if min_interval > 0:
                await asyncio.sleep(min_interval)

    # --- context-free: the gRPC methods below and the web API (master/web) call these ---
    def rebuild_group(self, removed: Sequence[str], actor: audit.Peer) -> RebuildPlan:
        """Rule 2, for `actor` (a gRPC context or an audit.Actor). Raises RequestError
        (a name that is not a member), recorded as a refusal."""
        # Only the named, unconnected members go (membership rule 3): a cut-off charger
        # still draws its lease, then its fail-safe current, so it keeps its reservation.
        try:
            plan = self.control.rebuild(removed)
        except RequestError as err:
            audit.record(self.security, audit.Kind.REBUILD_REFUSED, actor,
                         f"INVALID_ARGUMENT: {err}")
            raise
        self.store.forget(plan.removed)
        audit.record(self.security, audit.Kind.GROUP_REBUILT, actor, "removed "
                     f"{list(plan.removed)}, kept {list(plan.kept)}, offline kept "
                     f"{list(plan.offline_kept)}, named but connected "
                     f"{list(plan.refused_connected)}")
        self.log.info("group rebuilt", removed=plan.removed, kept=plan.kept,
                      offline_kept=plan.offline_kept,
                      refused_connected=plan.refused_connected)
        return plan

    def set_group_limit(self, limit_a: float, actor: audit.Peer) -> tuple[float, float]:
        """Rule 3, for `actor`: (previous limit, installed limit). Raises RequestError
        (above the installed limit, or not a current), recorded as a refusal."""
        installed = self.control.installed_limit_a
        try:
            previous = self.control.set_limit(limit_a)
        except RequestError as err:
            audit.record(self.security, audit.Kind.LIMIT_REFUSED, actor,
                         f"INVALID_ARGUMENT: {err}")
            raise
        self.log.info("group limit set", limit_a=limit_a, previous_limit_a=previous)
        audit.record(self.security, audit.Kind.LIMIT_SET, actor,
                     f"group limit {previous:g} A -> {limit_a:g} A per phase "
                     f"(installed {installed:g} A)")
        return previous, installed

    def admit_member(self, charger_id: str, actor: audit.Peer) -> bool:
        """Rule 4, for `actor`: True if newly admitted. Raises RequestError (not a
        charger id), recorded as a refusal."""
        problem = wire.charger_id_problem(charger_id)  # the check a Hello's charger id passes
        if problem:
            audit.record(self.security, audit.Kind.ADMIT_REFUSED, actor,
                         f"INVALID_ARGUMENT: {problem}")
            raise RequestError(peer="AdmitMember", problem=problem)
        admitted = self.store.admit_id(charger_id, now_wall=datetime.now(UTC))
        audit.record(self.security, audit.Kind.MEMBER_ADMITTED, actor,
                     f"charger {charger_id} admitted to group {self.config.group.name!r}"
                     if admitted else f"charger {charger_id} was admitted already: "
                     "nothing changed")
        self.log.info("charger admitted", charger_id=charger_id, changed=admitted)
        return admitted

    # --- gRPC ---------------------------------------------------------------------------
    async def RebuildGroup(self, request: pb.RebuildGroupRequest,
                           context: grpc.aio.ServicerContext
                           ) -> pb.RebuildGroupResponse:
        await self._authorise(context, Role.INSTALLER, "RebuildGroup")
        try:
            plan = self.rebuild_group(request.removed_charger_ids, context)
        except RequestError as err:
            await self._invalid(context, str(err))
        return pb.RebuildGroupResponse(removed_charger_ids=plan.removed,
                                       kept_charger_ids=plan.kept,
                                       offline_kept_charger_ids=plan.offline_kept)

    async def SetGroupLimit(self, request: pb.SetGroupLimitRequest,
                            context: grpc.aio.ServicerContext
                            ) -> pb.SetGroupLimitResponse:
        await self._authorise(context, Role.INSTALLER, "SetGroupLimit")
        # Above the installed limit: INVALID_ARGUMENT, like any value out of range. It
        # is not FAILED_PRECONDITION: no state of the system makes it valid (the
        # installed limit changes only with the config file and a restart).
        try:
            previous, installed = self.set_group_limit(request.limit_a, context)
        except RequestError as err:
            await self._invalid(context, str(err))
        return pb.SetGroupLimitResponse(limit_a=request.limit_a, previous_limit_a=previous,
                                        installed_limit_a=installed)

    async def AdmitMember(self, request: pb.AdmitMemberRequest,
                          context: grpc.aio.ServicerContext) -> pb.AdmitMemberResponse:
        await self._authorise(context, Role.INSTALLER, "AdmitMember")
        try:
            admitted = self.admit_member(request.charger_id, context)
        except RequestError as err:
            await self._invalid(context, err.problem)
        return pb.AdmitMemberResponse(charger_id=request.charger_id, admitted=admitted)

    async def GetSecurityLog(self, request: pb.GetSecurityLogRequest,
                             context: grpc.aio.ServicerContext
                             ) -> pb.GetSecurityLogResponse:
        await self._authorise(context, Role.VIEWER, "GetSecurityLog")
        return audit.newest(self.security, request.max_entries)
