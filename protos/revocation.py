"""Revoked certificates, checked by the application on every new stream.

grpcio's Python API has no revocation hook: `ssl_server_credentials` and
`dynamic_ssl_server_credentials` (which swaps certificates and roots between handshakes)
take no CRL, and the core's CRL options (grpc_tls_credentials_options_set_crl_provider)
are not exposed in Python (grpcio 1.85). So the TLS stack checks the chain and the
validity dates, and a server checks the serial number against the site's CRL itself, at
the start of every stream or call, before it believes a word (`authenticate_peer`).

1. The CRL is `crl.pem` in the PKI folder, made by `io7-pki init` (empty) and
   `io7-pki revoke` / `issue --force` (master/pki.py), copied to every master.
2. It must be signed by the site CA: a CRL from another site, or one edited by hand,
   is refused when loaded (the last good one stays in force).
3. A CRL past its nextUpdate still counts: revocations only ever accumulate, and a site
   without a reachable installer must keep running. `io7-pki` sets nextUpdate to the
   CA's end of life.
4. `CrlFile` reloads the file when it changes (inode, size or mtime), so revoking a lost
   phone needs no master restart: copy the new crl.pem over the old one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from protos.identity import (
    Identity,
    IdentityError,
    expect_site,
    identity_from_certificate,
    peer_certificate,
)


class RevocationError(ValueError):
    """A CRL that cannot be used (unreadable, not PEM, not signed by the site CA)."""


class PeerRefused(Exception):
    """A peer that passed the TLS handshake but may not talk to us; `reason` is one line
    for the security log and the PERMISSION_DENIED details (never a secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class RevocationList:
    """The serial numbers the site CA has revoked (rule 2: verified when built)."""

    serials: frozenset[int]
    number: int  # the CRL number (RFC 5280 5.2.3): grows with every CRL io7-pki writes

    @staticmethod
    def empty() -> RevocationList:
        return RevocationList(frozenset(), 0)

    @staticmethod
    def from_pem(pem: bytes, ca: x509.Certificate) -> RevocationList:
        """Parse and verify a CRL. Raises RevocationError."""
        try:
            crl = x509.load_pem_x509_crl(pem)
        except ValueError as e:
            raise RevocationError(f"not a PEM CRL ({e}): copy crl.pem from the PKI "
                                  "folder again") from None
        ca_key = ca.public_key()
        if (crl.issuer != ca.subject or not isinstance(ca_key, ec.EllipticCurvePublicKey)
                or not crl.is_signature_valid(ca_key)):
            raise RevocationError("the CRL is not signed by this site's CA: copy crl.pem "
                                  "from this site's PKI folder")
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            number = 0
        return RevocationList(frozenset(r.serial_number for r in crl), number)

    def revoked(self, cert: x509.Certificate) -> bool:
        return cert.serial_number in self.serials


def authenticate_peer(auth_context: Mapping[str, Iterable[bytes]], *, site: str,
                      crl: RevocationList) -> Identity:
    """The identity of a peer whose TLS handshake gRPC has accepted, checked against the
    CRL and the site. Pure. Raises PeerRefused with the reason (the serial number in hex
    for a revoked certificate, so the log names which one)."""
    try:
        cert = peer_certificate(auth_context)
        identity = expect_site(identity_from_certificate(cert), site)
    except IdentityError as e:
        raise PeerRefused(str(e)) from None
    if crl.revoked(cert):
        raise PeerRefused(f"{identity}: certificate {cert.serial_number:x} is revoked")
    return identity


class CrlFile:
    """The site CRL on disk, reloaded when the file changes (rule 4).

    `current()` stats the file (one syscall) and reparses only on change. A file that
    turns unreadable or invalid keeps the last good list in force and is reported in
    `problem` (the daemon logs it); it never empties the list.
    """

    def __init__(self, path: Path, ca: x509.Certificate) -> None:
        """Load `path` now. Raises RevocationError when it is missing or invalid: a master
        configured with a CRL must start with one."""
        self.path = path
        self._ca = ca
        self.problem: str | None = None
        self._stamp = self._stat()
        self._list = self._load()

    def _stat(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise RevocationError(f"{self.path}: cannot read the CRL ({e.strerror}): copy "
                                  "crl.pem from the PKI folder (io7-pki init makes it)") from None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> RevocationList:
        try:
            pem = self.path.read_bytes()
        except OSError as e:
            raise RevocationError(f"{self.path}: cannot read the CRL ({e.strerror})") from None
        try:
            return RevocationList.from_pem(pem, self._ca)
        except RevocationError as e:
            raise RevocationError(f"{self.path}: {e}") from None

    def current(self) -> RevocationList:
        """The list in force, reloaded first if the file changed."""
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                fresh = self._load()
                if fresh.number < self._list.number:
                    raise RevocationError(f"{self.path}: CRL number {fresh.number} is older "
                                          f"than the one in force ({self._list.number})")
                self._list, self._stamp, self.problem = fresh, stamp, None
        except RevocationError as e:
            self.problem = str(e)
        return self._list
