"""Raft between chargers over mutual TLS on asyncio: PySyncObj's `Transport` for io7d.

GroupRaft (raft.py) is ticked from io7d's event loop, so this transport lives on that loop
too, without threads: PySyncObj calls `send` from inside `tick`, and the loop's reader
tasks hand it what arrives between ticks (as tests/election/vnet.py does in virtual time).

1. Links. Every member listens on its own Raft address (from `[group.members]`) and dials each other
   member once. That outgoing connection carries its messages to that member; the
   member's own outgoing connection carries its messages back (PySyncObj's stock TCP
   transport pairs nodes the same way). `_onNodeConnected` / `_onNodeDisconnected` follow
   the outgoing link. A member that is down is redialled after 0.5 s, doubling up to 2 s.
2. TLS >= 1.2 both ways, a certificate of the site CA required both ways, and only the
   site CA trusted (the PEM of TlsMaterial, never the system's roots). The dialler checks
   the server against `server_name(site)`, as every client of the project does
   (protos/tls.py rule 2). The server side runs the handshake itself (`start_tls`) so
   that a refused one is logged: asyncio's own server drops it silently. The contexts
   and the peer check are in peertls.py.
3. Who. After the handshake the peer's certificate must name a charger of this site that
   is a member of the group (and, when dialled, the member we dialled) and is not on the
   CRL (protos/revocation.py's list, checked here as the gRPC services check it per
   stream). Anything else is closed with a security line `raft_peer_refused`; a failed
   handshake is `handshake_refused` / `handshake_abandoned` (master.audit's names).
4. Frames: a 4-byte big-endian length, then master.election.codec's bytes. A frame above
   codec.MAX_MESSAGE_BYTES closes that connection (the stream cannot be trusted to
   resynchronise); a message outside the schema (BadRaftMessage) is dropped with a
   `raft_message_refused` line, and the connection stays.
5. Flow: AppendWindow (flow.py) as vnet uses it, `may_send` before each send (a message
   it drops counts as sent: Raft resends) and `on_received` for every decoded message.
   PreVote (prevote.py): `pre_vote` and its reply are answered here, never passed on.
6. Same group: the first frame on every link is `group_hello` with a digest of the
   group's settings (io7dconfig: the [group] tables, [priorities], the lease); a member
   whose digest differs is refused (`raft_peer_refused`): a master with a shorter lease
   or hold than another's could not cover that one's grants at a takeover. A
   member that stops reading (a silent partition) is cut once MAX_QUEUED_BYTES wait.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pysyncobj.transport import Transport  # type: ignore[import-untyped]

from hw.securitylog import SecurityLog
from master.election.codec import MAX_MESSAGE_BYTES, BadRaftMessage, decode, encode
from master.election.flow import AppendWindow, stale, with_term
from master.election.peertls import (
    RaftBindError,
    SecurityKind,
    check_peer,
    client_context,
    listen,
    server_context,
)
from master.election.prevote import PreVote
from protos.identity import charger
from protos.identity import server_name as site_server_name
from protos.revocation import PeerRefused, RevocationList
from protos.tls import TlsFiles, TlsMaterial

HEADER = struct.Struct(">I")  # rule 4: the frame's length
RECONNECT_FIRST_S = 0.5  # rule 1: a restarted member is back within a heartbeat or five
RECONNECT_MAX_S = 2.0  # well under the election timeout's spread of leaders' lifetimes
HANDSHAKE_TIMEOUT_S = 3.0  # a LAN handshake takes milliseconds; a stalled one is a scan
CONNECT_TIMEOUT_S = 4.0  # TCP connect + handshake to a member
MAX_PENDING_HANDSHAKES = 16  # unauthenticated connections at once: a flood waits outside
MAX_QUEUED_BYTES = 256 * 1024  # ~4000 heartbeats (~60 B each): a member not reading


@dataclass(frozen=True, slots=True)
class TransportSetup:
    """What PySyncObj cannot pass to the transport it constructs itself."""

    material: TlsMaterial
    files: TlsFiles
    members: Mapping[str, str]  # charger id -> "host:port"
    loop: asyncio.AbstractEventLoop
    log: Any  # a structlog logger
    security: SecurityLog | None
    revocations: Callable[[], RevocationList]  # e.g. CrlFile(...).current
    bind_hint: str | None  # the config key that sets this charger's address (RaftBindError)
    group_digest: str = ""  # rule 6: what every member's group settings must hash to


def tls_transport_class(material: TlsMaterial, files: TlsFiles, members: Mapping[str, str],
                        loop: asyncio.AbstractEventLoop, log: Any, *,
                        security: SecurityLog | None = None,
                        revocations: Callable[[], RevocationList] = RevocationList.empty,
                        bind_hint: str | None = None,
                        group_digest: str = "") -> type[TlsTransport]:
    """A TlsTransport class bound to this charger's TLS files and group (PySyncObj
    constructs it with (syncObj, selfNode, otherNodes)); pass it to GroupRaft, whose
    constructor raises RaftBindError when this charger's address cannot be listened on
    (`bind_hint` names the config key that sets it, if not `[group.members] "ID"`)."""
    setup = TransportSetup(material, files, dict(members), loop, log, security, revocations,
                           bind_hint, group_digest)

    class Bound(TlsTransport):
        SETUP = setup

    return Bound


def _peer_address(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)


class TlsTransport(Transport):  # type: ignore[misc]
    """One member's Raft links (rules 1-5). `destroy` closes them; `wait_closed` waits."""

    SETUP: ClassVar[TransportSetup]

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        super().__init__(syncObj, selfNode, otherNodes)
        self.node = syncObj  # its current term, for PreVote rule 5
        s = self.SETUP
        self._by_address = {address: cid for cid, address in s.members.items()}
        if selfNode.address not in self._by_address:
            raise ValueError(f"{selfNode.address} is not a member's address")
        self.me = self._by_address[selfNode.address]
        self.nodes: dict[str, Any] = {self._by_address[n.address]: n for n in otherNodes}
        self.site = s.material.site
        self.log = s.log.bind(me=self.me)
        self.window = AppendWindow()
        self.prevote = PreVote(me=self.me, members=frozenset((self.me, *self.nodes)),
                               min_election_s=syncObj._getConf().raftMinTimeout)
        self.sent_bytes = self.received_bytes = 0  # frames with their headers
        self.sent_frames = 0  # one TLS record each (+22 B with TLS 1.3's AES-GCM)
        self._server_ctx = server_context(s.material, s.files)
        self._client_ctx = client_context(s.material, s.files)
        self._sock = listen(selfNode.address, self.me, s.bind_hint)
        self._server: asyncio.Server | None = None
        self._outgoing: dict[str, asyncio.StreamWriter] = {}
        self._incoming: dict[str, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._closed = False
        self._spawn(self._serve())
        for cid in self.nodes:
            self._spawn(self._dial(cid))

    # PySyncObj's side
    def now(self) -> float:
        return self.SETUP.loop.time()

    def prevote_tick(self) -> None:
        """prevote.py rule 1, on GroupRaft's tick."""
        if self.prevote.should_ask(self.now()):
            for cid in self.nodes:
                self._send_to(cid, {"type": "pre_vote", "term": 0})

    def send(self, node: Any, message: Any) -> bool:
        """True when queued on the live link to `node` (or dropped by the window, rule 5);
        False when that link is down (PySyncObj tolerates the loss)."""
        cid = self._by_address.get(node.address)
        if cid is not None and message.get("type") == "append_entries":
            self.prevote.heard_leader(self.now())  # a leader hears itself
        return cid is not None and self._send_to(cid, with_term(message,
                                                               self.node.raftCurrentTerm))

    def _send_to(self, cid: str, message: dict[str, Any]) -> bool:
        writer = self._outgoing.get(cid)
        if writer is None or writer.is_closing():
            return False
        data = encode(message)
        if len(data) > MAX_MESSAGE_BYTES:
            self.log.error("raft message too large to send: dropped", member=cid,
                                 size_b=len(data), type=message.get("type"))
            return False
        if writer.transport.get_write_buffer_size() > MAX_QUEUED_BYTES:
            self.log.warning("raft link cut: the member reads nothing", member=cid,
                                   queued_b=writer.transport.get_write_buffer_size())
            writer.close()
            return False
        if not self.window.may_send(cid, message, self.SETUP.loop.time()):
            return True
        writer.write(HEADER.pack(len(data)) + data)
        self.sent_bytes += HEADER.size + len(data)
        self.sent_frames += 1
        return True

    def destroy(self) -> None:
        """Close the listener and every connection (tasks are cancelled; `wait_closed`)."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        else:
            self._sock.close()
        for writer in (*self._outgoing.values(), *self._incoming.values()):
            writer.close()
        for task in list(self._tasks):
            task.cancel()

    async def wait_closed(self) -> None:
        """After `destroy`: every task of this transport has ended."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def linked_to(self) -> set[str]:
        """The members our outgoing links reach now."""
        return set(self._outgoing)

    def linked_from(self) -> set[str]:
        """The members whose links to us are up now."""
        return set(self._incoming)

    # tasks
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.SETUP.loop.create_task(coro)
        self._own(task)

    def _own(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("raft transport task failed", error=repr(task.exception()))

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, sock=self._sock)

    # incoming: a member's messages to us
    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """asyncio's callback: the connection gets a task of ours (asyncio's own task for
        a coroutine callback reports its cancellation at `destroy` as an error)."""
        self._spawn(self._incoming_link(reader, writer))

    async def _incoming_link(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        peer = _peer_address(writer)
        try:
            if self._closed or self._pending >= MAX_PENDING_HANDSHAKES:
                return
            self._pending += 1
            try:
                await writer.start_tls(self._server_ctx,
                                       ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S)
            except OSError as e:  # ssl.SSLError, resets and the timeout are OSErrors
                self._handshake_failed(peer, e)
                return
            finally:
                self._pending -= 1
            cid = self._identify(writer, peer, expected=None)
            if cid is None:
                return
            old = self._incoming.pop(cid, None)
            if old is not None:
                old.close()  # the member reconnected: its old link is dead
            if not await self._same_group(cid, reader, peer):
                return
            self._incoming[cid] = writer
            try:
                await self._read_frames(cid, reader, peer)
            finally:
                if self._incoming.get(cid) is writer:
                    del self._incoming[cid]
        finally:
            writer.close()

    async def _same_group(self, cid: str, reader: asyncio.StreamReader, peer: str) -> bool:
        """Rule 6: the member's first frame is its group_hello, with our digest."""
        try:
            size, = HEADER.unpack(await asyncio.wait_for(reader.readexactly(HEADER.size),
                                                         HANDSHAKE_TIMEOUT_S))
            hello = decode(await asyncio.wait_for(reader.readexactly(min(
                size, MAX_MESSAGE_BYTES)), HANDSHAKE_TIMEOUT_S))
        except (asyncio.IncompleteReadError, OSError, TimeoutError, BadRaftMessage) as e:
            self.log.info("raft link from member ended before its group hello", member=cid,
                          why=repr(e))
            return False
        if hello.get("type") == "group_hello" and hello.get("digest") == \
                self.SETUP.group_digest:
            return True
        self._security(SecurityKind.RAFT_PEER_REFUSED, who=f"charger {cid}", peer=peer,
                       detail="its group settings differ from ours ([group], "
                       "[group.members], [priorities], [master] cycle_ms and lease_cycles "
                       "must be the same on every member): give every member the same")
        return False

    async def _read_frames(self, cid: str, reader: asyncio.StreamReader, peer: str) -> None:
        node = self.nodes[cid]
        who = charger(self.site, cid).uri
        while True:
            try:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                if size > MAX_MESSAGE_BYTES:
                    self._security(SecurityKind.RAFT_MESSAGE_REFUSED, who=who, peer=peer,
                                   detail=f"a frame of {size} bytes, above the "
                                   f"{MAX_MESSAGE_BYTES} allowed: connection closed")
                    return
                data = await reader.readexactly(size)
            except (asyncio.IncompleteReadError, OSError):
                return  # the member closed or the link broke: it will redial
            self.received_bytes += HEADER.size + size
            try:
                message = decode(data)
            except BadRaftMessage as e:
                self._security(SecurityKind.RAFT_MESSAGE_REFUSED, who=who, peer=peer,
                               detail=f"dropped: {e}")
                continue
            self.window.on_received(cid, message)
            if self._prevote_received(cid, message):
                self._onMessageReceived(node, message)

    def _prevote_received(self, cid: str, message: dict[str, Any]) -> bool:
        """prevote.py: answer and note pre-votes here; True: hand to PySyncObj."""
        if stale(message, self.node.raftCurrentTerm):
            return False
        deliver, reply = self.prevote.received(cid, message, self.now(),
                                               self.node.raftCurrentTerm)
        if reply is not None:
            self._send_to(cid, reply)
        return deliver

    # outgoing: our messages to a member
    async def _dial(self, cid: str) -> None:
        node = self.nodes[cid]
        host, port = node.host.strip("[]"), node.port
        address = node.address
        delay, last_problem = RECONNECT_FIRST_S, ""
        while not self._closed:
            problem = ""
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    host, port, ssl=self._client_ctx,
                    server_hostname=site_server_name(self.site),
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S), CONNECT_TIMEOUT_S)
            except ssl.SSLCertVerificationError as e:  # not a charger of this site
                problem = f"member {cid}'s address answers with a certificate we refuse: " \
                          f"{e.verify_message}"
                if problem != last_problem:
                    self._security(SecurityKind.HANDSHAKE_REFUSED, who="", peer=address,
                                   detail=problem)
            except OSError as e:  # refused, unreachable, reset, timed out, TLS alerts
                problem = f"{type(e).__name__}: {e}"
                if problem != last_problem:
                    self.log.info("raft link to member down", member=cid,
                                        address=address, why=problem)
            else:
                if self._identify(writer, address, expected=cid) is not None:
                    await self._hold(cid, reader, writer)
                    delay = RECONNECT_FIRST_S
                else:
                    writer.close()
            last_problem = problem
            await asyncio.sleep(delay)
            delay = min(2 * delay, RECONNECT_MAX_S)

    async def _hold(self, cid: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """The link is up until it breaks: a member never writes on it, so any read ends
        it (EOF, an error, or bytes it should not have sent)."""
        node = self.nodes[cid]
        hello = encode({"type": "group_hello", "digest": self.SETUP.group_digest})
        writer.write(HEADER.pack(len(hello)) + hello)  # rule 6, before any Raft message
        self._outgoing[cid] = writer
        self.log.info("raft link to member up", member=cid, address=node.address)
        self._onNodeConnected(node)
        try:
            if await reader.read(1):
                self.log.warning("member wrote on our raft link: closed", member=cid)
        except OSError:
            pass  # the link broke: that ends the hold as EOF does (the finally below)
        finally:
            if self._outgoing.get(cid) is writer:
                del self._outgoing[cid]
            writer.close()
            if not self._closed:
                self._onNodeDisconnected(node)

    # checks and logs
    def _identify(self, writer: asyncio.StreamWriter, peer: str, *, expected: str | None
                  ) -> str | None:
        """Rule 3: the member this link is with, or None (closed and logged)."""
        ssl_object = writer.get_extra_info("ssl_object")
        der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
        try:
            return check_peer(der, site=self.site, members=self.SETUP.members, me=self.me,
                              expected=expected, crl=self.SETUP.revocations())
        except PeerRefused as e:
            self._security(SecurityKind.RAFT_PEER_REFUSED, who="", peer=peer, detail=e.reason)
            writer.close()
            return None

    def _handshake_failed(self, peer: str, error: OSError) -> None:
        abandoned = isinstance(error, (ConnectionError, TimeoutError, ssl.SSLEOFError))
        kind = SecurityKind.HANDSHAKE_ABANDONED if abandoned else SecurityKind.HANDSHAKE_REFUSED
        reason = getattr(error, "verify_message", None) or getattr(error, "reason", None)
        self._security(kind, who="", peer=peer,
                       detail=f"raft port: {reason or type(error).__name__}")

    def _security(self, kind: SecurityKind, *, who: str, peer: str, detail: str) -> None:
        """A structlog warning and, with a SecurityLog, its line (a failed write is logged,
        never raised: master.audit rule 3)."""
        self.log.warning("raft security event", kind=kind.value, who=who, peer=peer,
                         detail=detail)
        if self.SETUP.security is not None:
            try:
                self.SETUP.security.record(kind.value, who=who, peer=peer, detail=detail)
            except OSError as e:
                self.log.error("cannot write the security log: check its disk and "
                                     "permissions", error=str(e), kind=kind.value)


__all__ = ["RaftBindError", "SecurityKind", "TlsTransport", "check_peer", "client_context",
           "listen", "server_context", "tls_transport_class"]
