"""The charge point's certificates (OCPP 1.6 security whitepaper ed. 2, "Certificate
management"), kept in `<state_dir>/ocpp-certs/`:

    cp-key.pem                  the charge point's private key (0600): made here, never sent
    cp-cert.pem                 its certificate chain from CertificateSigned, leaf first
    cp-key.pending.pem          the key of the last CSR, until its certificate arrives (0600)
    CentralSystemRootCertificate/<sha256>.pem, ManufacturerRootCertificate/<sha256>.pem

Rules:
 1. SignCertificate: a CSR with a new EC P-256 key, subject CN = the charge point id and
    O = the CPO name when one is set (whitepaper: "organizationName (O) SHALL contain the
    CPO name"); the key goes to cp-key.pending.pem (0600) and never leaves the folder. A
    new CSR replaces a pending one.
 2. CertificateSigned is accepted only if the chain parses (PEM, at most
    CertificateSignedMaxChainSize characters), the leaf carries the pending key, is valid
    now, names the charge point id as its CN, and each certificate is signed by the next,
    the last by a trusted CSMS root (installed, or the [ocpp] ca_file). Then key and chain
    replace the installed ones and the pending key is gone; otherwise nothing changes and
    the answer says why (`CertError`).
 3. InstallCertificate takes one PEM CA certificate (basicConstraints CA) valid now, at
    most MAX_ROOTS in all; the same one again is accepted and changes nothing.
    GetInstalledCertificateIds lists them by CertificateHashData (SHA256 over the issuer's
    DER name and public key, as OCSP does; serial in lower-case hex); DeleteCertificate
    removes the one whose hash data match, NotFound otherwise.
 4. Files are written atomically (temporary file, fsync, rename): a power cut leaves the
    old certificate or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from agent.errors import AgentError

FOLDER = "ocpp-certs"
MAX_ROOTS = 10  # team choice: a CSMS rotates one or two roots; CertificateStoreMaxLength
MAX_CHAIN_CHARS = 10_000  # CertificateSignedMaxChainSize: a leaf and two CAs in PEM fit


class RootUse(enum.Enum):
    """OCPP 1.6 security whitepaper CertificateUseEnumType."""

    CENTRAL_SYSTEM = "CentralSystemRootCertificate"
    MANUFACTURER = "ManufacturerRootCertificate"


class CertError(AgentError, ValueError):
    """A certificate the CSMS sent does not fit (rules 2, 3); nothing was changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HashData:
    """CertificateHashDataType (rule 3)."""

    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    hash_algorithm: str = "SHA256"

    def to_json(self) -> dict[str, str]:
        return {"hashAlgorithm": self.hash_algorithm, "issuerNameHash": self.issuer_name_hash,
                "issuerKeyHash": self.issuer_key_hash, "serialNumber": self.serial_number}


def hash_data(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> HashData:
    """Rule 3: the hash data of `cert` (a root is its own issuer)."""
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer or cert,
                                                    hashes.SHA256()).build()
    return HashData(issuer_name_hash=req.issuer_name_hash.hex(),
                    issuer_key_hash=req.issuer_key_hash.hex(),
                    serial_number=format(req.serial_number, "x"))


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Rule 4: `data` to `path` atomically, readable only by its owner (mode)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def _pem_certs(text: str, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError as err:
        raise CertError(f"{what} is not PEM certificates: {err}") from None
    if not certs:
        raise CertError(f"{what} holds no certificate")
    return certs


def _valid_now(cert: x509.Certificate, now: dt.datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertError(f"{what} is valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                        f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now")


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class CertStore:
    """The files of rules 1-4 under `state_dir`; `trusted` are extra CSMS roots (the
    [ocpp] ca_file's). OSError when the folder cannot be written."""

    def __init__(self, state_dir: Path, *, charge_point_id: str,
                 trusted: Sequence[Path] = (), cpo_name: str | None = None) -> None:
        self.folder = state_dir / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.charge_point_id, self.cpo_name = charge_point_id, cpo_name
        self.trusted = tuple(trusted)
        self.key_file, self.cert_file = self.folder / "cp-key.pem", self.folder / "cp-cert.pem"
        self.pending_file = self.folder / "cp-key.pending.pem"

    # --- the charge point certificate (rules 1, 2) -------------------------------------------
    def client_pair(self) -> tuple[Path, Path] | None:
        """(certificate chain, key) installed by CertificateSigned, None if none."""
        if self.cert_file.is_file() and self.key_file.is_file():
            return self.cert_file, self.key_file
        return None

    def make_csr(self) -> str:
        """Rule 1: a PEM CSR for a new key (kept pending)."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, self.charge_point_id)]
        if self.cpo_name:
            attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.cpo_name))
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)) \
            .sign(key, hashes.SHA256())
        write_private(self.pending_file, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def install_signed(self, chain_pem: str, now: dt.datetime) -> x509.Certificate:
        """Rule 2: install the chain for the pending key; its leaf. CertError says why
        not (and nothing changed)."""
        if len(chain_pem) > MAX_CHAIN_CHARS:
            raise CertError(f"the chain has {len(chain_pem)} characters, at most "
                            f"{MAX_CHAIN_CHARS} (CertificateSignedMaxChainSize)")
        if not self.pending_file.is_file():
            raise CertError("no SignCertificate is pending: no key waits for a certificate")
        key = serialization.load_pem_private_key(self.pending_file.read_bytes(), None)
        chain = _pem_certs(chain_pem, "certificateChain")
        leaf = chain[0]
        if leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo) \
                != key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo):
            raise CertError("the certificate is not for the key of the last CSR")
        _valid_now(leaf, now, "the certificate")
        cns = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cns != [self.charge_point_id]:
            raise CertError(f"the certificate names CN {cns}, not {self.charge_point_id!r}")
        for cert, issuer in itertools.pairwise(chain):
            if not _signed_by(cert, issuer):
                raise CertError(f"{cert.subject.rfc4514_string()} is not signed by the "
                                f"next certificate of the chain")
        if not any(_signed_by(chain[-1], root) or chain[-1] == root
                   for root in self.csms_roots()):
            raise CertError("the chain does not lead to a trusted Central System root")
        write_private(self.cert_file, chain_pem.encode(), 0o644)
        write_private(self.key_file, self.pending_file.read_bytes())
        self.pending_file.unlink()
        return leaf

    # --- root certificates (rule 3) ----------------------------------------------------------
    def _root_dir(self, use: RootUse) -> Path:
        return self.folder / use.value

    def _roots(self, use: RootUse) -> list[tuple[Path, x509.Certificate]]:
        folder = self._root_dir(use)
        out = []
        for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
            try:
                out.append((path, x509.load_pem_x509_certificate(path.read_bytes())))
            except ValueError:
                continue  # a file a person put there: not ours
        return out

    def root_files(self, use: RootUse = RootUse.CENTRAL_SYSTEM) -> list[Path]:
        return [p for p, _ in self._roots(use)]

    def csms_roots(self) -> list[x509.Certificate]:
        """The installed Central System roots and the ca_file's certificates."""
        certs = [c for _, c in self._roots(RootUse.CENTRAL_SYSTEM)]
        for path in self.trusted:
            try:
                certs += x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError):
                continue  # checked at start (agent.ocpp.settings); a later edit: skipped
        return certs

    def install_root(self, use: RootUse, pem: str, now: dt.datetime) -> bool:
        """Rule 3: True if installed, False if it was there already; CertError if not
        a CA certificate valid now, or the store is full."""
        [cert] = _pem_certs(pem, "certificate")[:1]
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise CertError("not a CA certificate (basicConstraints CA:TRUE is missing)")
        _valid_now(cert, now, "the root certificate")
        der = cert.public_bytes(serialization.Encoding.DER)
        path = self._root_dir(use) / f"{hashlib.sha256(der).hexdigest()}.pem"
        if path.exists():
            return False
        if sum(len(self._roots(u)) for u in RootUse) >= MAX_ROOTS:
            raise CertError(f"{MAX_ROOTS} root certificates are installed, the most this "
                            "charge point keeps: delete one first")
        path.parent.mkdir(exist_ok=True, mode=0o700)
        write_private(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return True

    def installed(self, use: RootUse) -> list[HashData]:
        return [hash_data(c) for _, c in self._roots(use)]

    def delete(self, wanted: HashData) -> bool:
        """Rule 3: remove the root certificate with these hash data; False if none."""
        key = (wanted.issuer_name_hash.lower(), wanted.issuer_key_hash.lower(),
               wanted.serial_number.lower().lstrip("0") or "0")
        for use in RootUse:
            for path, cert in self._roots(use):
                h = hash_data(cert)
                if (h.issuer_name_hash, h.issuer_key_hash, h.serial_number) == key:
                    path.unlink()
                    return True
        return False


def client_pair_problem(cert: Path, key: Path) -> str | None:
    """What is wrong with a client certificate and key file pair, None if they fit."""
    try:
        certs = x509.load_pem_x509_certificates(cert.read_bytes())
    except (OSError, ValueError) as err:
        return f"{cert}: not a PEM certificate ({err})"
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), None)
    except (OSError, ValueError, TypeError) as err:
        return f"{key}: not an unencrypted PEM private key ({err})"
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if certs[0].public_key().public_bytes(*fmt) != private.public_key().public_bytes(*fmt):
        return f"{key} is not the key of {cert}: give the pair issued together"
    if key.stat().st_mode & 0o077:
        return f"{key} can be read by others: chmod 600 {key}"
    return None
