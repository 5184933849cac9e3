"""Who a TLS peer is: the io7 identity in its certificate's subject alternative name.

Shared by the master, the agents and io7ctl (pure: no I/O, no clock). The site CA made by
`io7-pki` (master/pki.py) signs every certificate; TLS proves the peer holds the key of a
certificate of *this* CA, and this module says who the certificate names.

1. A certificate names exactly one identity, as a URI in its subject alternative name:
   `io7://SITE/charger/ID` for a charger (its agent and its master candidate), or
   `io7://SITE/operator/NAME?role=installer|viewer` for a person running io7ctl.
   The role rides in the same URI as the name so one SAN entry is one whole identity
   (no private X.509 extension, which would need an enterprise OID, and no second URI
   that could be read without the first). A certificate with none, or with two, names
   nobody and is refused.
2. SITE is one DNS label (lower-case letters, digits, hyphens; <= 63): it also goes into
   the name every charger certificate carries for serving, `chargers.SITE.io7.internal`
   (`server_name`), which clients check instead of an IP address that DHCP may change.
   ".internal" is the top-level domain reserved for private use (ICANN, 2024).
3. ID and NAME use the charger id's characters (agent.configtable.ID_RE, 1-64 of
   `A-Za-z0-9._-`), minus names made only of dots: they become folder names in the PKI
   folder, and "." or ".." would escape it.
4. Another site's identity is refused by `expect_site` even if its CA were trusted too.
5. What an identity may do: only charger ID may say Hello as ID (`authorise_hello`);
   an operator's role decides the GroupAdmin calls (`authorise_admin`), and a charger's
   certificate is no operator's.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509

SCHEME = "io7"
SITE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")  # one DNS label (RFC 1035)
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")  # = agent.configtable.ID_RE (a test checks)
_URI_RE = re.compile(r"io7://(?P<site>[^/?#]*)/(?P<kind>[^/?#]*)/(?P<name>[^/?#]*)"
                     r"(?:\?(?P<query>[^#]*))?")
# The property grpc core fills with the peer's certificate (grpc_security_constants.h)
AUTH_PEM_CERT = "x509_pem_cert"


class Kind(enum.StrEnum):
    CHARGER = "charger"
    OPERATOR = "operator"


class Role(enum.StrEnum):
    """An operator's role: a viewer reads (GetStatus, WatchStatus); an installer may also
    change the group (RebuildGroup, SetGroupLimit, AdmitMember)."""

    VIEWER = "viewer"
    INSTALLER = "installer"

    def permits(self, needed: Role) -> bool:
        """True when this role may do what `needed` may (an installer may view)."""
        return self is Role.INSTALLER or needed is Role.VIEWER


class IdentityError(ValueError):
    """A URI or a certificate that names no valid io7 identity; the message says why."""


def _check_site(site: str) -> None:
    if not SITE_RE.fullmatch(site):
        raise IdentityError(f"site {site!r} is not one DNS label: lower-case letters, digits "
                            "and inner hyphens, 1-63 characters (e.g. 'garage-west')")


def _check_name(kind: Kind, name: str) -> None:
    if not NAME_RE.fullmatch(name) or not name.strip("."):
        raise IdentityError(f"{kind} name {name!r} must be 1-64 of A-Z a-z 0-9 . _ - "
                            "and not only dots")


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """One io7 identity; `role` is set for an operator and None for a charger."""

    site: str
    kind: Kind
    name: str
    role: Role | None = None

    def __post_init__(self) -> None:
        _check_site(self.site)
        _check_name(self.kind, self.name)
        if self.kind is Kind.OPERATOR and self.role is None:
            raise IdentityError(f"operator {self.name!r} needs a role (installer or viewer)")
        if self.kind is Kind.CHARGER and self.role is not None:
            raise IdentityError(f"charger {self.name!r} takes no role")

    @property
    def uri(self) -> str:
        """The SAN URI (rule 1)."""
        base = f"{SCHEME}://{self.site}/{self.kind}/{self.name}"
        return base if self.role is None else f"{base}?role={self.role}"

    def __str__(self) -> str:
        return self.uri


def charger(site: str, charger_id: str) -> Identity:
    return Identity(site=site, kind=Kind.CHARGER, name=charger_id)


def operator(site: str, name: str, role: Role) -> Identity:
    return Identity(site=site, kind=Kind.OPERATOR, name=name, role=role)


def server_name(site: str) -> str:
    """The DNS name every charger certificate of `site` carries for serving (rule 2);
    clients verify the server against it (grpc.ssl_target_name_override)."""
    _check_site(site)
    return f"chargers.{site}.io7.internal"


def parse_identity(uri: str) -> Identity:
    """The identity a SAN URI names. Raises IdentityError saying what is malformed."""
    m = _URI_RE.fullmatch(uri)
    if m is None:
        raise IdentityError(f"{uri!r} is not an io7 identity: expected "
                            "io7://SITE/charger/ID or io7://SITE/operator/NAME?role=ROLE")
    try:
        kind = Kind(m["kind"])
    except ValueError:
        raise IdentityError(f"{uri!r}: unknown kind {m['kind']!r} "
                            "(charger or operator)") from None
    role: Role | None = None
    query = m["query"]
    if query is not None:
        key, _, value = query.partition("=")
        if key != "role" or value not in {r.value for r in Role}:
            raise IdentityError(f"{uri!r}: the query must be role=installer or role=viewer")
        role = Role(value)
    return Identity(site=m["site"], kind=kind, name=m["name"], role=role)


def identity_from_certificate(cert: x509.Certificate) -> Identity:
    """The one io7 identity `cert` names (rule 1). Raises IdentityError when it names none,
    several, or a malformed one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise IdentityError("the certificate has no subject alternative name: "
                            "issue it with io7-pki") from None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith(f"{SCHEME}:")]
    if len(uris) != 1:
        raise IdentityError(f"the certificate names {len(uris)} io7 identities, not one: "
                            "issue it with io7-pki")
    return parse_identity(uris[0])


def peer_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> x509.Certificate:
    """The peer's certificate from a gRPC server context's `auth_context()`.

    gRPC has verified it against the CA before any handler runs; an empty context means a
    plaintext channel. Raises IdentityError.
    """
    pems = list(auth_context.get(AUTH_PEM_CERT, ()))
    if not pems:
        raise IdentityError("the peer presented no certificate (plaintext channel?)")
    try:
        return x509.load_pem_x509_certificate(pems[0])
    except ValueError as e:
        raise IdentityError(f"the peer's certificate cannot be read: {e}") from None


def expect_site(identity: Identity, site: str) -> Identity:
    """`identity` if it belongs to `site` (rule 4), else IdentityError."""
    if identity.site != site:
        raise IdentityError(f"{identity} belongs to site {identity.site!r}, not {site!r}")
    return identity


def authorise_hello(identity: Identity, charger_id: str) -> None:
    """Nothing if `identity` may say Hello as `charger_id` (rule 5), else IdentityError
    with the reason for PERMISSION_DENIED and the security log."""
    if identity.kind is not Kind.CHARGER:
        raise IdentityError(f"{identity} is not a charger: it cannot say Hello")
    if identity.name != charger_id:
        raise IdentityError(f"{identity} cannot say Hello as charger {charger_id!r}")


def authorise_admin(identity: Identity, needed: Role, call: str) -> None:
    """Nothing if `identity` may make GroupAdmin `call`, which needs `needed` (rule 5),
    else IdentityError saying which certificate it takes."""
    if identity.role is None or not identity.role.permits(needed):
        raise IdentityError(f"{identity} may not {call}: it takes an operator certificate "
                            f"with role {needed} (io7-pki issue operator NAME --role {needed})")
