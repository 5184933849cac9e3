"""io7-pki: the site's certificates, for installers (issue 11, section 1).

One folder per site, on the installer's laptop or an offline USB stick, never on a
charger (deploy/PKI.md):

    PKI/ca/ca.pem  ca/ca.key        the site CA (the key signs everything: keep it offline)
    PKI/crl.pem                     revoked serials, signed by the CA: copy it to the master
    PKI/chargers/ID/                ca.pem cert.pem key.pem: copy the folder to charger ID
    PKI/operators/NAME/             ca.pem cert.pem key.pem: for that person's io7ctl

1. Keys are written 0600 (folders 0700), atomically (temp file, then rename), and never
   printed; certificates 0644. What goes in a certificate: master/pkicerts.py.
2. Nothing is overwritten without --force: not the CA (every certificate issued before
   would become useless), not an identity. `issue --force` replaces an identity and
   revokes its previous certificate (reason: superseded), so a replaced charger's old
   key, wherever it went, opens nothing.
3. `revoke NAME` adds the certificate to crl.pem; the master reloads the file when it
   changes (protos/revocation.py). A name that is both a charger and an operator needs
   --kind.

Dates are the wall clock (UTC): certificates are about calendar time, and the functions
take `now` so tests can make an expired one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from master import pkicerts
from protos.identity import Identity, IdentityError, Kind, Role, identity_from_certificate

DEFAULT_DIR = "io7-pki"  # in the current folder, unless --dir or $IO7_PKI_DIR
_FOLDERS = {Kind.CHARGER: "chargers", Kind.OPERATOR: "operators"}
EXIT_REFUSED = 1  # a CA or identity exists (no --force), an unknown name, no CA yet
EXIT_USAGE = 2  # argparse's own
EXIT_FOLDER = 3  # the PKI folder cannot be read or written, or holds a damaged file


class PkiError(Exception):
    """One line for the user; `exit_code` is EXIT_REFUSED or EXIT_FOLDER."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        self.exit_code = exit_code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Listed:
    identity: Identity
    serial: int
    not_after: dt.datetime
    revoked: bool
    folder: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with `mode` from the first byte on (rule 1)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask may have narrowed it; never widened
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise PkiError(f"{path}: cannot write ({e.strerror})", EXIT_FOLDER) from None


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise PkiError(f"{path}: cannot read the certificate ({e})", EXIT_FOLDER) from None


class Pki:
    """A site's PKI folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca_cert = folder / "ca" / "ca.pem"
        self.ca_key = folder / "ca" / "ca.key"
        self.crl = folder / "crl.pem"

    def identity_folder(self, kind: Kind, name: str) -> Path:
        return self.folder / _FOLDERS[kind] / name

    def init(self, site: str, *, now: dt.datetime, days: int = pkicerts.CA_DAYS,
             force: bool = False) -> x509.Certificate:
        """Create the site CA and an empty CRL (rule 2). Raises PkiError."""
        if self.ca_key.exists() and not force:
            raise PkiError(f"{self.ca_key} exists: this folder already has a site CA "
                           "(--force replaces it, and every certificate it issued)")
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise PkiError(f"{self.folder}: cannot create ({e.strerror})", EXIT_FOLDER) from None
        try:
            key = pkicerts.new_key()
            ca = pkicerts.build_ca(key, site=site, now=now, days=days)
        except (ValueError, IdentityError) as e:
            raise PkiError(str(e)) from None
        _write(self.ca_key, _key_pem(key), 0o600)
        _write(self.ca_cert, _pem(ca), 0o644)
        crl = pkicerts.build_crl(key, ca, [], number=1, now=now)
        _write(self.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return ca

    def _load_ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, str]:
        if not self.ca_key.exists():
            raise PkiError(f"{self.folder} has no site CA: run `io7-pki init --site NAME` "
                           "first (or pass --dir)")
        try:
            key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            raise PkiError(f"{self.ca_key}: cannot read the CA key ({e})", EXIT_FOLDER) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{self.ca_key}: not an EC key (not made by io7-pki)", EXIT_FOLDER)
        ca = _read_cert(self.ca_cert)
        try:
            return key, ca, pkicerts.ca_site(ca)
        except ValueError as e:
            raise PkiError(f"{self.ca_cert}: {e}", EXIT_FOLDER) from None

    def revoked(self) -> tuple[list[pkicerts.Revocation], int]:
        """The CRL's entries and its number."""
        try:
            crl = x509.load_pem_x509_crl(self.crl.read_bytes())
        except (OSError, ValueError) as e:
            raise PkiError(f"{self.crl}: cannot read the CRL ({e})", EXIT_FOLDER) from None
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        return pkicerts.crl_entries(crl), number

    def _add_to_crl(self, serial: int, reason: x509.ReasonFlags, now: dt.datetime) -> None:
        key, ca, _ = self._load_ca()
        entries, number = self.revoked()
        if all(e.serial != serial for e in entries):
            entries.append(pkicerts.Revocation(serial, now, reason))
        crl = pkicerts.build_crl(key, ca, entries, number=number + 1, now=now)
        _write(self.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)

    def issue(self, kind: Kind, name: str, *, now: dt.datetime, role: Role | None = None,
              days: int | None = None, san_ips: Sequence[str] = (),
              san_dns: Sequence[str] = (), force: bool = False) -> x509.Certificate:
        """Issue (or with `force` replace, revoking the old: rule 2) an identity's key and
        certificate into its folder, with a copy of the CA certificate. Raises PkiError."""
        ca_key, ca, site = self._load_ca()
        try:
            identity = Identity(site=site, kind=kind, name=name, role=role)
        except IdentityError as e:
            raise PkiError(str(e)) from None
        folder = self.identity_folder(kind, name)
        old = folder / "cert.pem"
        previous = _read_cert(old) if old.exists() else None
        if previous is not None and not force:
            raise PkiError(f"{kind} {name} exists ({folder}): --force issues a new key and "
                           "certificate and revokes the old one")
        if days is None:
            days = pkicerts.CHARGER_DAYS if kind is Kind.CHARGER else pkicerts.OPERATOR_DAYS
        key = pkicerts.new_key()
        try:
            cert = pkicerts.build_leaf(ca_key, ca, key, identity, now=now, days=days,
                                       san_ips=san_ips, san_dns=san_dns)
        except ValueError as e:
            raise PkiError(str(e)) from None
        _write(folder / "key.pem", _key_pem(key), 0o600)
        _write(folder / "cert.pem", _pem(cert), 0o644)
        _write(folder / "ca.pem", _pem(ca), 0o644)
        if previous is not None:
            self._add_to_crl(previous.serial_number, x509.ReasonFlags.superseded, now)
        return cert

    def find(self, name: str, kind: Kind | None = None) -> tuple[Kind, Path]:
        """The folder of the identity called `name` (rule 3). Raises PkiError."""
        kinds = [kind] if kind is not None else list(Kind)
        found = [(k, self.identity_folder(k, name)) for k in kinds
                 if (self.identity_folder(k, name) / "cert.pem").exists()]
        if not found:
            raise PkiError(f"no {kind or 'charger or operator'} called {name!r} in "
                           f"{self.folder} (io7-pki show lists them)")
        if len(found) > 1:
            raise PkiError(f"{name!r} is both a charger and an operator: add "
                           "--kind charger or --kind operator")
        return found[0]

    def revoke(self, name: str, *, now: dt.datetime, kind: Kind | None = None,
               ) -> tuple[x509.Certificate, bool]:
        """Revoke `name`'s certificate; returns it and False if it was revoked already."""
        _, folder = self.find(name, kind)
        cert = _read_cert(folder / "cert.pem")
        entries, _ = self.revoked()
        if any(e.serial == cert.serial_number for e in entries):
            return cert, False
        self._add_to_crl(cert.serial_number, x509.ReasonFlags.key_compromise, now)
        return cert, True

    def listing(self) -> list[Listed]:
        """Every certificate in the folder, chargers first, by name."""
        entries, _ = self.revoked()
        serials = {e.serial for e in entries}
        out = []
        for kind, sub in _FOLDERS.items():
            for cert_path in sorted((self.folder / sub).glob("*/cert.pem")):
                cert = _read_cert(cert_path)
                try:
                    identity = identity_from_certificate(cert)
                except IdentityError as e:
                    raise PkiError(f"{cert_path}: {e}", EXIT_FOLDER) from None
                if identity.kind is not kind:
                    raise PkiError(f"{cert_path} names {identity}, not a {kind}", EXIT_FOLDER)
                out.append(Listed(identity, cert.serial_number, cert.not_valid_after_utc,
                                  cert.serial_number in serials, cert_path.parent))
        return out


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= 40 * 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days in [1, 14640]")
    return days


def _parser() -> argparse.ArgumentParser:
    # --dir is taken before or after the command; the commands' copy has no default, so
    # it does not overwrite one given first (argparse copies subparser defaults over).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=argparse.SUPPRESS,
                        help="the site's PKI folder (default $IO7_PKI_DIR, else "
                             f"./{DEFAULT_DIR})")
    p = argparse.ArgumentParser(
        prog="io7-pki", parents=[common],
        description="The site's certificates: a CA, one certificate per charger and per "
                    "operator, a revocation list. Keys are written 0600 and never printed.",
        epilog="Exit codes: 0 done; 1 refused (exists without --force, unknown name, no CA "
               "yet); 2 bad arguments; 3 the PKI folder cannot be read or written. "
               "Install steps: deploy/PKI.md.")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", parents=[common], help="create the site CA and its CRL")
    init.add_argument("--site", required=True, help="one DNS label, e.g. garage-west")
    init.add_argument("--days", type=_days, default=pkicerts.CA_DAYS)
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    issue = sub.add_parser("issue", parents=[common], help="issue a charger or operator")
    kinds = issue.add_subparsers(dest="kind", required=True)
    ch = kinds.add_parser("charger", parents=[common], help="a charger (client and server)")
    ch.add_argument("name", metavar="ID", help="the charger id of its agent.toml")
    ch.add_argument("--san-ip", action="append", default=[], metavar="IP",
                    help="a LAN address it serves on (repeatable)")
    ch.add_argument("--san-dns", action="append", default=[], metavar="NAME",
                    help="a DNS name it serves as (repeatable)")
    op = kinds.add_parser("operator", parents=[common], help="a person using io7ctl")
    op.add_argument("name", metavar="NAME")
    op.add_argument("--role", required=True, choices=[r.value for r in Role])
    for k in (ch, op):
        k.add_argument("--days", type=_days, default=None,
                       help=f"lifetime (default {pkicerts.CHARGER_DAYS} for a charger, "
                            f"{pkicerts.OPERATOR_DAYS} for an operator)")
        k.add_argument("--force", action="store_true",
                       help="replace an existing one and revoke its old certificate")
    rv = sub.add_parser("revoke", parents=[common], help="revoke a charger or operator")
    rv.add_argument("name", metavar="NAME")
    rv.add_argument("--kind", choices=[k.value for k in Kind])
    sub.add_parser("show", parents=[common], help="list certificates and revocations")
    return p


def _show(pki: Pki, now: dt.datetime) -> None:
    listed = pki.listing()
    entries, number = pki.revoked()
    _, ca, site = pki._load_ca()
    print(f"site {site}  CA until {ca.not_valid_after_utc:%Y-%m-%d}  CRL #{number}, "
          f"{len(entries)} revoked")
    print(f"{'identity':<52} {'serial':<40} {'not after':<10}  status")
    for e in listed:
        status = ("revoked" if e.revoked else
                  "expired" if e.not_after < now else "valid")
        print(f"{e.identity.uri:<52} {e.serial:<40x} {e.not_after:%Y-%m-%d}  {status}")
    current = {e.serial for e in listed}
    for r in entries:
        if r.serial not in current:
            print(f"{'(replaced or removed)':<52} {r.serial:<40x} {'':<10}  revoked "
                  f"{r.when:%Y-%m-%d} ({r.reason.value})")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    folder = getattr(args, "dir", None) or Path(os.environ.get("IO7_PKI_DIR", DEFAULT_DIR))
    pki, now = Pki(folder), _utcnow()
    try:
        if args.command == "init":
            ca = pki.init(args.site, now=now, days=args.days, force=args.force)
            print(f"site CA for {args.site} in {pki.folder}, valid until "
                  f"{ca.not_valid_after_utc:%Y-%m-%d}; keep {pki.ca_key} offline")
        elif args.command == "issue":
            kind = Kind(args.kind)
            role = Role(args.role) if kind is Kind.OPERATOR else None
            cert = pki.issue(kind, args.name, now=now, role=role, days=args.days,
                             san_ips=getattr(args, "san_ip", ()),
                             san_dns=getattr(args, "san_dns", ()), force=args.force)
            ident = identity_from_certificate(cert)
            print(f"{ident}  serial {cert.serial_number:x}  valid until "
                  f"{cert.not_valid_after_utc:%Y-%m-%d}: copy "
                  f"{pki.identity_folder(kind, args.name)}/ to the {kind}")
        elif args.command == "revoke":
            kind_opt = Kind(args.kind) if args.kind else None
            cert, fresh = pki.revoke(args.name, now=now, kind=kind_opt)
            what = "revoked" if fresh else "was already revoked"
            print(f"{identity_from_certificate(cert)} (serial {cert.serial_number:x}) {what}: "
                  f"copy {pki.crl} to the master(s)")
        else:
            _show(pki, now)
    except PkiError as e:
        print(f"io7-pki: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
