"""gRPC credentials for mutual TLS with the site CA, from the files `io7-pki` writes.

Every charger has a folder `chargers/ID/` from the PKI folder (master/pki.py) holding
`ca.pem` (the site CA), `cert.pem` (its certificate) and `key.pem` (its key, 0600); an
operator has `operators/NAME/` with the same three files. `TlsFiles.in_folder` names them.

1. Servers (the master, and later every charger's master candidate) require a client
   certificate signed by the site CA (`server_credentials`): no certificate, another CA's
   or an expired one fails the handshake, before any handler runs. Revocation and the
   identity are the application's check (protos/revocation.py).
2. Clients (agents, io7ctl, election peers) trust only the site CA and verify the server
   against `server_name(site)`, not the address they dialled (`channel_options`): the
   master may move to another charger, DHCP may renumber it, and an operator's or another
   site's certificate does not carry that name. A fake master is refused by the handshake.
3. gRPC core negotiates TLS 1.2 or 1.3 only (its default minimum is 1.2).
4. Files are checked at load with one-line errors that say what to do: missing,
   unreadable, not PEM, a key readable by others (like ssh, refused: chmod 600), a key
   that is not the certificate's, a certificate not signed by the CA next to it.
   Dates are not refused here (the handshake does that), but `validity_problem` says
   when a certificate is expired or not yet valid, e.g. a charger booted with its clock
   at 1970 before NTP or OCPP set it: the daemon logs it, since the handshake's own
   error on the other side says only "certificate verify failed".
"""

from __future__ import annotations

import datetime as dt
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from protos.identity import Identity, IdentityError, identity_from_certificate, server_name

if TYPE_CHECKING:  # loaded where credentials are made (agent-only mode loads no gRPC)
    import grpc


class TlsError(ValueError):
    """A TLS file is missing, unreadable or does not fit; the message says what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @staticmethod
    def in_folder(folder: Path) -> TlsFiles:
        """ca.pem, cert.pem and key.pem in `folder` (a charger's or operator's folder)."""
        return TlsFiles(ca=folder / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsMaterial:
    """The three files read and checked against each other (rule 4)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    ca: x509.Certificate
    cert: x509.Certificate
    identity: Identity

    @property
    def site(self) -> str:
        return self.identity.site


_HOW = "run `io7-pki issue charger ID` (or `issue operator NAME`) and copy its folder here"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsError(f"{path}: {what} is missing: {_HOW}") from None
    except OSError as e:
        raise TlsError(f"{path}: cannot read {what} ({e.strerror}): give this process's "
                       "user read access (the key: owner only, chmod 600)") from None


def _cert(pem: bytes, path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise TlsError(f"{path}: {what} is not a PEM certificate: {_HOW}") from None


def load_tls(files: TlsFiles) -> TlsMaterial:
    """Read and cross-check the files (rule 4). Raises TlsError."""
    ca_pem = _read(files.ca, "the site CA certificate")
    cert_pem = _read(files.cert, "the certificate")
    key_pem = _read(files.key, "the private key")
    mode = files.key.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TlsError(f"{files.key}: the private key is readable by others "
                       f"(mode {stat.S_IMODE(mode):o}): chmod 600 {files.key}")
    ca = _cert(ca_pem, files.ca, "the site CA certificate")
    cert = _cert(cert_pem, files.cert, "the certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TlsError(f"{files.key}: not an unencrypted PEM private key: {_HOW}") from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, pub) != cert.public_key().public_bytes(der, pub):
        raise TlsError(f"{files.key} is not the key of {files.cert}: copy both from the same "
                       "folder of the PKI folder")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise TlsError(f"{files.cert} is not signed by the CA in {files.ca}: both must come "
                       "from this site's PKI folder") from None
    try:
        identity = identity_from_certificate(cert)
    except IdentityError as e:
        raise TlsError(f"{files.cert}: {e}") from None
    return TlsMaterial(ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem, ca=ca, cert=cert,
                       identity=identity)


def validity_problem(cert: x509.Certificate, now: dt.datetime) -> str | None:
    """None while `cert` is valid at `now` (aware UTC), else one line saying what to do."""
    if now < cert.not_valid_before_utc:
        return (f"the clock says {now:%Y-%m-%d %H:%M} UTC, before the certificate's start "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M}: set the time (NTP)")
    if now > cert.not_valid_after_utc:
        return (f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}: issue a new "
                "one (io7-pki issue ... --force)")
    return None


def server_credentials(material: TlsMaterial) -> grpc.ServerCredentials:
    """Credentials for `server.add_secure_port`: client certificates required (rule 1)."""
    import grpc  # noqa: PLC0415 (not at import: agent-only mode loads no gRPC)

    return grpc.ssl_server_credentials([(material.key_pem, material.cert_pem)],
                                       root_certificates=material.ca_pem,
                                       require_client_auth=True)


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Credentials for `grpc.aio.secure_channel`: trusts the site CA only, presents ours."""
    import grpc  # noqa: PLC0415 (as above)

    return grpc.ssl_channel_credentials(root_certificates=material.ca_pem,
                                        private_key=material.key_pem,
                                        certificate_chain=material.cert_pem)


def channel_options(site: str) -> list[tuple[str, str]]:
    """Options to add to a client channel's: verify the server as `server_name(site)`
    (rule 2), whatever address was dialled."""
    return [("grpc.ssl_target_name_override", server_name(site))]
