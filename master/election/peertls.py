"""Who may speak Raft to this charger, and where it listens: the TLS side of tlstransport.

Pure checks and setup, no event loop: the ssl contexts of rule 2, the peer check of rule 3
(master/election/tlstransport.py's rules), and the listening socket whose failure says
which config key to change. The security log's kind names are here too.
"""

from __future__ import annotations

import enum
import errno
import socket
import ssl
from collections.abc import Collection

from cryptography import x509

from master.errors import MasterError
from protos.identity import IdentityError, Kind, expect_site, identity_from_certificate
from protos.revocation import PeerRefused, RevocationList
from protos.tls import TlsFiles, TlsMaterial


class SecurityKind(enum.StrEnum):
    """Security log kinds; the handshake ones are master.audit.Kind's for gRPC's."""

    HANDSHAKE_REFUSED = "handshake_refused"
    HANDSHAKE_ABANDONED = "handshake_abandoned"
    RAFT_PEER_REFUSED = "raft_peer_refused"  # rule 3
    RAFT_MESSAGE_REFUSED = "raft_message_refused"  # rule 4


class RaftBindError(MasterError):
    """This charger cannot listen on its Raft address; the message says what to change."""


def server_context(material: TlsMaterial, files: TlsFiles) -> ssl.SSLContext:
    """Rule 2, the listening side: a client certificate of the site CA required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=material.ca_pem.decode("ascii"))
    ctx.load_cert_chain(files.cert, files.key)  # ssl takes the key from a file only
    return ctx


def client_context(material: TlsMaterial, files: TlsFiles) -> ssl.SSLContext:
    """Rule 2, the dialling side: site CA only, the server checked against
    `server_name(site)` (pass it as server_hostname), our certificate presented."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname, CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=material.ca_pem.decode("ascii"))
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


def check_peer(der: bytes | None, *, site: str, members: Collection[str], me: str,
               expected: str | None, crl: RevocationList) -> str:
    """The member id that a handshaken peer's certificate (DER) names (rule 3). Raises
    PeerRefused with one line for the security log."""
    if not der:
        raise PeerRefused("the peer presented no certificate")
    try:
        cert = x509.load_der_x509_certificate(der)
        identity = expect_site(identity_from_certificate(cert), site)
    except (ValueError, IdentityError) as e:  # IdentityError is a ValueError too
        raise PeerRefused(str(e)) from None
    if crl.revoked(cert):
        raise PeerRefused(f"{identity}: certificate {cert.serial_number:x} is revoked")
    if identity.kind is not Kind.CHARGER:
        raise PeerRefused(f"{identity} is not a charger: only members speak Raft")
    if identity.name == me or identity.name not in members:
        raise PeerRefused(f"{identity} is not another member of this group "
                          f"({', '.join(sorted(members))})")
    if expected is not None and identity.name != expected:
        raise PeerRefused(f"{identity} answered at the address of member {expected}")
    return identity.name


def listen(address: str, member_id: str, where: str | None = None) -> socket.socket:
    """A listening socket on `address` ("host:port"). `where` names the config key that
    sets it (default: `[group.members] "ID"`). Raises RaftBindError: a taken port is
    refused (SO_REUSEADDR only, never SO_REUSEPORT)."""
    host, _, port_text = address.rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    where = where or f'[group.members] "{member_id}"'
    try:
        return socket.create_server((host, port), reuse_port=False)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise RaftBindError(f"cannot listen for the group's election on {address}: port "
                                f"{port} is taken by another process; stop it, or give this "
                                f"charger another port in {where} on every member") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise RaftBindError(f"cannot listen on {address}: {host} is not an address of "
                                f"this charger; fix {where} on every member") from None
        raise RaftBindError(f"cannot listen on {address} ({e.strerror}): check {where}"
                            ) from None
