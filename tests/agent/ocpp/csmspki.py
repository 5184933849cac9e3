"""A throwaway back-office PKI for the OCPP security tests, made with `cryptography`: the
CSMS's CA is not the site's (io7-pki), so it has its own small builders here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = dt.timedelta(days=1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @staticmethod
    def make(cn: str) -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - DAY).not_valid_after(now + 2 * DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return Ca(key, cert)

    def sign(self, public: ec.EllipticCurvePublicKey, subject: x509.Name, *,
             server: bool = False) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
             .public_key(public).serial_number(x509.random_serial_number())
             .not_valid_before(now - DAY).not_valid_after(now + DAY)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.SERVER_AUTH if server
                  else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
        return b.sign(self.key, hashes.SHA256())

    def sign_csr(self, csr_pem: str) -> x509.Certificate:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        public = csr.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        return self.sign(public, csr.subject)

    def issue(self, folder: Path, name: str, cn: str, *, server: bool = False
              ) -> tuple[Path, Path]:
        """A key and certificate for `cn` written to folder/name.pem, name.key (0600)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.sign(key.public_key(), _name(cn), server=server)
        (folder / f"{name}.pem").write_bytes(pem(cert).encode())
        key_path = folder / f"{name}.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        os.close(fd)
        return folder / f"{name}.pem", key_path


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def csms_tls(folder: Path, *, require_client: bool) -> ssl.SSLContext:
    """The back office's server context: server.pem/key; with `require_client`, a client
    certificate signed by ca.pem is required (security profile 3)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=folder / "ca.pem")
    return context
