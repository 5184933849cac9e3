"""The certificates of a site PKI, built in memory (no files, `now` passed in).

master/pki.py lays them out in the PKI folder; this module only decides what is in them.

1. Keys are EC P-256 (ECDSA with SHA-256): 32-byte keys and ~70-byte signatures, cheap
   on the charger's small CPU in a handshake storm (500 agents reconnecting): measured on
   the dev machine, a P-256 signature takes 76 us where RSA-2048's takes 569 us (7.5x),
   and every TLS 1.2/1.3 stack speaks it (the curve RFC 8446 9.1 requires).
2. Lifetimes (defaults; flags override):
   - the CA, 20 years: a charger's service life. Replacing the CA means visiting every
     charger, and its key lives offline, so a long life costs little.
   - a charger, 10 years: it is installed once and nobody visits it to renew; a
     replaced or stolen charger is revoked, not waited out.
   - an operator, 1 year: laptops and phones get lost and staff change; renewing is one
     command on the installer's laptop.
   A certificate never outlives its CA: its end is cut to the CA's.
3. Start dates are backdated 1 hour so a device clock slightly behind still accepts a
   fresh certificate.
4. A charger serves too (every charger runs a master candidate), so its certificate is
   good for serverAuth and clientAuth and carries the site's server name
   (`protos.identity.server_name`) plus any LAN IPs and DNS names given; an operator's is
   clientAuth only, so an operator's certificate cannot pose as a master.
5. The identity is the SAN URI of protos/identity.py; the subject's CN repeats the name
   for people reading `openssl x509 -text`, and nothing relies on it.
6. The CRL (RFC 5280 5) lists every revoked serial with its date and reason, carries a
   growing CRL number, and is valid until the CA's end (protos/revocation.py rule 3).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protos.identity import SCHEME, Identity, Kind, server_name

CA_DAYS = 20 * 365 + 5  # rule 2: 20 years, leap days included
CHARGER_DAYS = 10 * 365 + 2
OPERATOR_DAYS = 365
BACKDATE = dt.timedelta(hours=1)  # rule 3


@dataclass(frozen=True, slots=True)
class Revocation:
    serial: int
    when: dt.datetime
    reason: x509.ReasonFlags


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key (rule 1)."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str, site: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"io7 site {site}"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


def build_ca(key: ec.EllipticCurvePrivateKey, *, site: str, now: dt.datetime,
             days: int = CA_DAYS) -> x509.Certificate:
    """The self-signed site CA; its SAN URI `io7://SITE` names the site."""
    server_name(site)  # validates the site name (one DNS label)
    name = _name(f"io7 site CA {site}", site)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"{SCHEME}://{site}")]), critical=False)
            .sign(key, hashes.SHA256()))


def ca_site(ca: x509.Certificate) -> str:
    """The site a CA made by `build_ca` is for. Raises ValueError for another CA."""
    try:
        san = ca.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ValueError("the CA certificate names no io7 site (not made by io7-pki)") from None
    prefix = f"{SCHEME}://"
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(prefix) and "/" not in uri[len(prefix):]:
            return uri[len(prefix):]
    raise ValueError("the CA certificate names no io7 site (not made by io7-pki)")


def build_leaf(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
               key: ec.EllipticCurvePrivateKey, identity: Identity, *, now: dt.datetime,
               days: int, san_ips: Sequence[str] = (), san_dns: Sequence[str] = (),
               ) -> x509.Certificate:
    """A charger's or operator's certificate signed by the CA (rules 2-5).

    `now` may lie in the past (tests make an expired certificate with it). Raises
    ValueError for a malformed IP address.
    """
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if identity.kind is Kind.CHARGER:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        sans.append(x509.DNSName(server_name(identity.site)))
        sans.extend(x509.DNSName(d) for d in san_dns)
        sans.extend(x509.IPAddress(ipaddress.ip_address(ip)) for ip in san_ips)
    elif san_ips or san_dns:
        raise ValueError("an operator's certificate takes no IP or DNS names (it never serves)")
    not_after = min(now + dt.timedelta(days=days), ca.not_valid_after_utc)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(_name(identity.name, identity.site))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))


def build_crl(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
              revoked: Iterable[Revocation], *, number: int,
              now: dt.datetime) -> x509.CertificateRevocationList:
    """The site CRL (rule 6)."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca.subject)
               .last_update(now - BACKDATE)
               .next_update(max(ca.not_valid_after_utc, now))
               .add_extension(x509.CRLNumber(number), critical=False))
    for r in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(r.serial).revocation_date(r.when)
            .add_extension(x509.CRLReason(r.reason), critical=False).build())
    return builder.sign(ca_key, hashes.SHA256())


def crl_entries(crl: x509.CertificateRevocationList) -> list[Revocation]:
    """What a CRL lists, to rebuild it with one more entry."""
    out = []
    for r in crl:
        try:
            reason = r.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = x509.ReasonFlags.unspecified
        out.append(Revocation(r.serial_number, r.revocation_date_utc, reason))
    return out
