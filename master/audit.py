"""The master's security log (issue 11): where it lives, who acted, the events' names.

1. The log is `<state_db>.security.jsonl` (and its rotated `.1`), beside the term file
   and the lock: the state folder is already checked writable at start, it is the
   master's own, and an installer finds every file of one master in one place. No
   config key: one less thing to get wrong.
2. `who(context)` is the one place that says who acted or was refused: the io7 identity
   of the peer's certificate (mutual TLS: gRPC has verified it against the site CA), or
   in plaintext the peer's address without its port (a client's port changes with every
   connection; its host is what names it). `peer` is always the full address.
3. A failed write (disk full, folder removed) never changes what the master does: the
   refusal is still a refusal, the limit still set. It is logged as an error instead.
4. Callers pass no secrets (hw.securitylog rule 5 redacts as a second line).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import structlog

from hw.securitylog import SecurityLog
from protos.identity import IdentityError, identity_from_certificate, peer_certificate
from protos.io7.cluster.v1 import cluster_pb2 as pb

DEFAULT_ENTRIES = 100  # GetSecurityLogRequest.max_entries = 0 (the .proto's default)
MAX_ENTRIES = 10_000  # about two full 1 MiB files: a reply of a few MiB at most
log = structlog.get_logger("master.audit")


class Kind(StrEnum):
    """The stable names of the master's security events."""

    MASTER_STARTED = "master_started"
    MASTER_STOPPED = "master_stopped"
    CONFIG_LOADED = "config_loaded"  # the config file's SHA-256 at start: a change shows
    HELLO_INVALID = "hello_invalid"  # bad charger id, absurd term, a Hello the engine refuses
    HELLO_WRONG_GROUP = "hello_wrong_group"
    HELLO_NOT_MEMBER = "hello_not_member"  # unknown charger, closed group
    HELLO_NO_ROOM = "hello_no_room"  # wiring outside the phases, Minimise without room
    MEMBER_JOINED = "member_joined"  # a new member (open group, or admitted)
    TERM_RAISED = "term_raised"
    GROUP_REBUILT = "group_rebuilt"
    REBUILD_REFUSED = "rebuild_refused"
    LIMIT_SET = "limit_set"
    LIMIT_REFUSED = "limit_refused"
    MEMBER_ADMITTED = "member_admitted"
    ADMIT_REFUSED = "admit_refused"
    PLAINTEXT = "plaintext"  # started without TLS ([tls] plaintext = true)
    TLS_REFUSED = "tls_refused"  # a certificate past the handshake: revoked, other site
    HANDSHAKE_REFUSED = "handshake_refused"  # by gRPC core's TLS (master/handshakelog.py)
    HANDSHAKE_ABANDONED = "handshake_abandoned"  # the peer closed during it, or it timed out
    IDENTITY_MISMATCH = "identity_mismatch"  # a Hello not as the certificate's charger
    ROLE_REFUSED = "role_refused"  # a GroupAdmin call the certificate's role may not make
    EXTERNAL_LIMIT = "external_limit"  # set, changed, withdrawn, expired (externallimits)


class Peer(Protocol):
    """What the log needs of a gRPC servicer context."""

    def peer(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted outside gRPC (the web API, master/web): named already, e.g.
    "web:installer", with its peer's address."""

    name: str
    address: str

    def peer(self) -> str:
        return self.address


def security_log_path(state_db: Path) -> Path:
    """Rule 1: `<state_db>.security.jsonl`."""
    return state_db.with_name(state_db.name + ".security.jsonl")


def who(context: Peer | None) -> str:
    """Rule 2: the identity that acted or was refused ("" for the master itself)."""
    if context is None:
        return ""
    if isinstance(context, Actor):
        return context.name
    auth_context = getattr(context, "auth_context", None)  # a gRPC servicer context's
    if auth_context is not None:
        try:
            return str(identity_from_certificate(peer_certificate(auth_context())))
        except IdentityError:
            pass  # plaintext, or a certificate naming nobody: its address says who
    address = context.peer()
    if address.startswith(("ipv4:", "ipv6:")):
        return address.rpartition(":")[0]
    return address


def record(security: SecurityLog, kind: Kind, context: Peer | None, detail: str) -> None:
    """Append one event (rule 3: a failed write is logged, never raised)."""
    try:
        security.record(kind.value, who=who(context),
                        peer="" if context is None else context.peer(), detail=detail)
    except OSError as exc:
        log.error("cannot write the security log: check the state folder's disk and "
                  "permissions", path=str(security.path), error=str(exc), kind=kind.value,
                  detail=detail)


def newest(security: SecurityLog, max_entries: int) -> pb.GetSecurityLogResponse:
    """The newest `max_entries` events (0: DEFAULT_ENTRIES), oldest first."""
    n = min(max_entries or DEFAULT_ENTRIES, MAX_ENTRIES)
    return pb.GetSecurityLogResponse(events=[
        pb.SecurityEvent(time_utc=e.time_utc, kind=e.kind, who=e.who, peer=e.peer,
                         detail=e.detail)
        for e in security.tail(n)])
