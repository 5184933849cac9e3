"""master.election.tlstransport: three GroupRafts on loopback over real mutual TLS.

Real sockets and real TLS in one asyncio loop, ticked every 50 ms as io7d ticks them.
Bounds are generous (real time, a shared machine); nothing asserts a speed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import structlog
from cryptography.hazmat.primitives.serialization import Encoding

from hw.securitylog import SecurityEvent, SecurityLog
from master.election.codec import MAX_MESSAGE_BYTES, encode
from master.election.lease import LeaseSettings
from master.election.raft import ElectionView, GroupRaft
from master.election.tlstransport import (
    HEADER,
    RaftBindError,
    TlsTransport,
    check_peer,
    client_context,
    listen,
    tls_transport_class,
)
from master.pki import Pki
from protos.identity import Kind, Role, server_name
from protos.revocation import PeerRefused, RevocationList
from protos.tls import TlsFiles, load_tls
from tests.tlssupport import make_site

LEASE = LeaseSettings(lease_s=3.0)
IDS = ("io7-01", "io7-02", "io7-03")
GENEROUS_S = 15.0
TICK_S = 0.05
NO_REVOCATIONS = RevocationList.empty()


@dataclass
class Sites:
    ours: Pki
    other: Pki  # another site's CA, same charger ids


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Sites:
    tmp = tmp_path_factory.mktemp("pki")
    return Sites(ours=make_site(tmp / "ours", chargers=(*IDS, "io7-99"),
                                operators=(("alice", Role.INSTALLER),)),
                 other=make_site(tmp / "other", chargers=IDS, operators=()))


def files_of(pki: Pki, kind: Kind, name: str) -> TlsFiles:
    return TlsFiles.in_folder(pki.identity_folder(kind, name))


def free_ports(n: int) -> list[int]:
    """Ports free now (Raft addresses are fixed before anyone binds)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Group:
    """Members of one group in this loop; `run` ticks the live ones every 50 ms."""

    pki: Pki
    logs: Path
    members: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, GroupRaft] = field(default_factory=dict)
    views: dict[str, ElectionView] = field(default_factory=dict)
    security: dict[str, SecurityLog] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ticker = asyncio.get_running_loop().create_task(self.tick_forever())
        self.members = {cid: f"127.0.0.1:{p}" for cid, p in zip(IDS, free_ports(len(IDS)),
                                                                 strict=True)}

    def start(self, cid: str, crl: RevocationList = NO_REVOCATIONS,
              digest: str = "same") -> None:
        files = files_of(self.pki, Kind.CHARGER, cid)
        self.security.setdefault(cid, SecurityLog(self.logs / f"{cid}.security.jsonl"))
        cls = tls_transport_class(load_tls(files), files, self.members,
                                  asyncio.get_running_loop(), structlog.get_logger("test"),
                                  security=self.security[cid], revocations=lambda: crl,
                                  group_digest=digest)
        self.nodes[cid] = GroupRaft(cid, self.members, lease=LEASE, transport_class=cls)

    def transport(self, cid: str) -> TlsTransport:
        transport: TlsTransport = self.nodes[cid]._SyncObj__transport
        return transport

    async def stop(self, cid: str) -> None:
        transport = self.transport(cid)
        self.nodes.pop(cid).close()
        self.views.pop(cid, None)
        await transport.wait_closed()

    async def close(self) -> None:
        self.ticker.cancel()
        for cid in list(self.nodes):
            await self.stop(cid)
        for log in self.security.values():
            log.close()

    async def tick_forever(self) -> None:
        """io7d's loop: every member ticked every 50 ms, whatever the test awaits."""
        while True:
            await asyncio.sleep(TICK_S)
            for cid, node in list(self.nodes.items()):
                self.views[cid] = node.tick(time.monotonic())

    async def run_until(self, done: Callable[[], bool], limit_s: float = GENEROUS_S) -> float:
        """Wait until `done()` holds; the real seconds it took. Fails past `limit_s`."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            await asyncio.sleep(TICK_S)
            if done():
                return time.monotonic() - start
        raise AssertionError(f"not within {limit_s} s: {self.views}")

    def leaders(self) -> list[str]:
        return [c for c, v in self.views.items() if v.leading and v.valid_for_s > 0.0]

    def settled(self) -> bool:
        """Exactly one leads with a confirmed lease and every live member names it."""
        leaders = self.leaders()
        return (len(leaders) == 1 and len(self.views) == len(self.nodes)
                and all(v.leader_id == leaders[0] for v in self.views.values()))

    def events(self, cid: str, kind: str) -> list[SecurityEvent]:
        return [e for e in self.security[cid].tail(1000) if e.kind == kind]


@pytest.fixture
async def group(sites: Sites, tmp_path: Path) -> AsyncIterator[Group]:
    group = Group(sites.ours, tmp_path)
    try:
        yield group
    finally:
        await group.close()


async def test_one_member_leads_and_a_new_one_takes_over_when_it_stops(group: Group) -> None:
    for cid in IDS:
        group.start(cid)
    await group.run_until(group.settled)
    (first,) = group.leaders()
    await group.stop(first)
    await group.run_until(lambda: group.settled() and group.leaders() != [first])
    (second,) = group.leaders()
    assert second != first
    for cid, node in group.nodes.items():  # the transport told PySyncObj
        assert group.transport(cid).linked_to() == set(IDS) - {cid, first}
        assert {n.address for n in node._SyncObj__connectedNodes} == {
            group.members[c] for c in set(IDS) - {cid, first}}
    group.start(first)  # back: it follows the new leader, whose lease holds
    await group.run_until(lambda: group.settled() and len(group.views) == 3)


async def intruder(address: str, ctx: ssl.SSLContext, hostname: str | None,
                   payload: bytes = b"") -> bytes:
    """Connect with `ctx`, send `payload`, return what arrives before the server closes
    (an SSL error or a reset counts as closed)."""
    host, _, port = address.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, int(port), ssl=ctx, server_hostname=hostname), 5.0)
    except (ssl.SSLError, ConnectionError):
        return b""
    try:
        writer.write(payload)
        return await asyncio.wait_for(reader.read(), 5.0)
    except (ssl.SSLError, ConnectionError):
        return b""
    finally:
        writer.close()


def trusting_anything(files: TlsFiles) -> ssl.SSLContext:
    """A client that presents `files`' certificate and checks nothing of the server's."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


async def test_intruders_are_refused_and_logged_and_the_election_goes_on(
        group: Group, sites: Sites) -> None:
    for cid in IDS:
        group.start(cid)
    await group.run_until(group.settled)
    (leader,) = group.leaders()
    target = group.members[leader]
    ours = sites.ours
    non_member = files_of(ours, Kind.CHARGER, "io7-99")
    operator = files_of(ours, Kind.OPERATOR, "alice")
    heartbeat = HEADER.pack(5) + b"\x81\xa4type"

    # another CA's certificate with a member's id: the handshake fails
    other = trusting_anything(files_of(sites.other, Kind.CHARGER, "io7-02"))
    assert await intruder(target, other, None, heartbeat) == b""
    # this CA, but a charger that is not a member; an operator
    for files in (non_member, operator):
        ctx = client_context(load_tls(files), files)
        assert await intruder(target, ctx, server_name("garage"), heartbeat) == b""
    # no certificate at all
    anonymous = ssl.create_default_context(cadata=ours.ca_cert.read_text())
    assert await intruder(target, anonymous, server_name("garage"), heartbeat) == b""
    # not TLS at all: garbage, then an oversized frame header
    for raw in (os.urandom(300), HEADER.pack(MAX_MESSAGE_BYTES + 1) + b"\0" * 64):
        r, w = await asyncio.open_connection(*target.split(":"))
        w.write(raw)
        assert await asyncio.wait_for(r.read(), 5.0) == b""
        w.close()

    refused = group.events(leader, "raft_peer_refused")
    assert [e.detail for e in refused] == [
        "io7://garage/charger/io7-99 is not another member of this group "
        "(io7-01, io7-02, io7-03)",
        "io7://garage/operator/alice?role=installer is not a charger: only members "
        "speak Raft"]
    handshakes = group.events(leader, "handshake_refused")
    # the other CA's, no certificate, garbage, the big header
    assert len(handshakes) == 4, handshakes
    await asyncio.sleep(1.0)
    assert group.settled() and group.leaders() == [leader]


async def test_a_member_s_oversized_frame_closes_its_link_and_a_bad_message_is_dropped(
        group: Group, sites: Sites) -> None:
    """io7-03's own certificate, played by the test: two members are a majority."""
    group.start("io7-01")
    group.start("io7-02")
    await group.run_until(group.settled)
    files = files_of(sites.ours, Kind.CHARGER, "io7-03")
    host, _, port = group.members["io7-01"].rpartition(":")
    reader, writer = await asyncio.open_connection(
        host, int(port), ssl=client_context(load_tls(files), files),
        server_hostname=server_name("garage"))
    hello = encode({"type": "group_hello", "digest": "same"})  # rule 6 first
    writer.write(HEADER.pack(len(hello)) + hello)
    not_raft = encode({"type": "install", "command": b"rm -rf /"})
    writer.write(HEADER.pack(len(not_raft)) + not_raft)
    vote = encode({"type": "response_vote", "term": 0})  # stale: harmless
    writer.write(HEADER.pack(len(vote)) + vote)
    await group.run_until(lambda: bool(group.events("io7-01", "raft_message_refused")))
    assert "io7-03" in group.transport("io7-01").linked_from()  # the link stays
    writer.write(HEADER.pack(MAX_MESSAGE_BYTES + 1))
    assert await asyncio.wait_for(reader.read(), 5.0) == b""
    assert "io7-03" not in group.transport("io7-01").linked_from()
    details = [e.detail for e in group.events("io7-01", "raft_message_refused")]
    assert details[0].startswith("dropped: unknown message type 'install'")
    assert details[1] == (f"a frame of {MAX_MESSAGE_BYTES + 1} bytes, above the "
                          f"{MAX_MESSAGE_BYTES} allowed: connection closed")
    assert all(e.who == "io7://garage/charger/io7-03"
               for e in group.events("io7-01", "raft_message_refused"))
    await asyncio.sleep(1.0)
    assert group.settled()
    writer.close()


async def test_a_member_with_other_group_settings_is_refused(group: Group) -> None:
    """Rule 6: io7-03's [group] differs (its digest): the others refuse its links and
    elect without it; it names the reason in their security log."""
    group.start("io7-01")
    group.start("io7-02")
    group.start("io7-03", digest="other")
    await group.run_until(lambda: len(group.leaders()) == 1
                          and group.leaders()[0] != "io7-03"
                          and bool(group.events("io7-01", "raft_peer_refused")))
    assert "group settings differ" in group.events("io7-01", "raft_peer_refused")[0].detail
    assert "io7-03" not in group.transport("io7-01").linked_from()


async def test_a_taken_port_is_refused_with_the_key_to_change(group: Group) -> None:
    port = int(group.members["io7-01"].rpartition(":")[2])
    taken = rf"port {port} is taken by another process.*\[group\.members\] \"io7-01\""
    with socket.create_server(("127.0.0.1", port)), pytest.raises(RaftBindError, match=taken):
        group.start("io7-01")


async def test_a_revoked_member_is_refused_both_ways(group: Group, sites: Sites) -> None:
    cert = load_tls(files_of(sites.ours, Kind.CHARGER, "io7-03")).cert
    crl = RevocationList(frozenset({cert.serial_number}), 2)
    group.start("io7-01", crl)
    group.start("io7-02", crl)
    group.start("io7-03")  # still believes it is a member
    await group.run_until(lambda: len(group.leaders()) == 1
                          and group.leaders()[0] != "io7-03"
                          and len(group.events("io7-01", "raft_peer_refused")) >= 2)
    # the serial is in the reason; the security log redacts it as a long hex run
    revoked = "io7://garage/charger/io7-03: certificate [redacted] is revoked"
    assert {e.detail for e in group.events("io7-01", "raft_peer_refused")} == {revoked}
    assert group.transport("io7-01").linked_to() == {"io7-02"}
    assert group.transport("io7-01").linked_from() == {"io7-02"}


@pytest.mark.parametrize(("row", "name", "kind", "expected", "outcome"), [
    ("a member", "io7-02", Kind.CHARGER, None, "io7-02"),
    ("the member dialled", "io7-02", Kind.CHARGER, "io7-02", "io7-02"),
    ("another member than dialled", "io7-03", Kind.CHARGER, "io7-02",
     "io7://garage/charger/io7-03 answered at the address of member io7-02"),
    ("this charger's own certificate", "io7-01", Kind.CHARGER, None,
     "io7://garage/charger/io7-01 is not another member of this group "
     "(io7-01, io7-02, io7-03)"),
    ("an operator", "alice", Kind.OPERATOR, None,
     "io7://garage/operator/alice?role=installer is not a charger: only members speak Raft"),
])
def test_check_peer(sites: Sites, row: str, name: str, kind: Kind, expected: str | None,
                    outcome: str) -> None:
    der = load_tls(files_of(sites.ours, kind, name)).cert.public_bytes(Encoding.DER)
    check = partial(check_peer, der, members=IDS, me="io7-01", expected=expected,
                    crl=NO_REVOCATIONS)
    if outcome in IDS:
        assert check(site="garage") == outcome, row
    else:
        with pytest.raises(PeerRefused) as refused:
            check(site="garage")
        assert refused.value.reason == outcome, row
    with pytest.raises(PeerRefused, match="belongs to site 'garage', not 'depot'"):
        check(site="depot")


def test_an_address_of_another_host_is_refused_with_the_key_to_change() -> None:
    with pytest.raises(RaftBindError, match=r"192\.0\.2\.7 is not an address of this "
                       r"charger; fix \[group\.members\] \"io7-01\" \(port \+ 1\)"):
        listen("192.0.2.7:4712", "io7-01", '[group.members] "io7-01" (port + 1)')
