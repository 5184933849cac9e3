"""io7-pki (master/pki.py, master/pkicerts.py): the CLI as a subprocess, and the library."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from master import pkicerts
from master.pki import EXIT_FOLDER, EXIT_REFUSED, EXIT_USAGE, Pki
from protos.identity import Kind, Role, charger, identity_from_certificate, operator
from protos.revocation import RevocationList
from tests.tlssupport import NOW, make_site


def pki_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "master.pki", "--dir", str(folder), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cert_at(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_cli_makes_a_site_with_private_keys_0600_never_printed(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    runs = [pki_cli(d, "init", "--site", "garage"),
            pki_cli(d, "issue", "charger", "io7-01", "--san-ip", "192.168.7.21",
                    "--san-dns", "io7-01.lan"),
            pki_cli(d, "issue", "operator", "alice", "--role", "installer"),
            pki_cli(d, "revoke", "alice"),
            pki_cli(d, "show")]
    for r in runs:
        assert r.returncode == 0, r.stderr
    keys = [d / "ca" / "ca.key", d / "chargers/io7-01/key.pem", d / "operators/alice/key.pem"]
    printed = "".join(r.stdout + r.stderr for r in runs)
    for key in keys:
        assert mode(key) == 0o600
        body = "".join(key.read_text().splitlines()[1:-1])  # the base64 between the armour
        assert body[:40] not in printed.replace("\n", "")
    assert "PRIVATE KEY" not in printed
    for folder in (d, d / "ca", d / "chargers/io7-01", d / "operators/alice"):
        assert mode(folder) == 0o700
    assert mode(d / "chargers/io7-01/cert.pem") == 0o644
    show = runs[-1].stdout
    assert "io7://garage/charger/io7-01" in show
    assert "io7://garage/operator/alice?role=installer" in show
    assert show.count("revoked") == 2  # the header's "1 revoked" and alice's line
    cert = cert_at(d / "chargers/io7-01/cert.pem")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.7.21")]
    assert san.get_values_for_type(x509.DNSName) == ["chargers.garage.io7.internal",
                                                      "io7-01.lan"]


def test_cli_exit_codes_and_one_line_errors(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    r = pki_cli(d, "issue", "charger", "io7-01")
    assert (r.returncode, r.stderr.strip()) == (
        EXIT_REFUSED, f"io7-pki: {d} has no site CA: run `io7-pki init --site NAME` first "
                      "(or pass --dir)")
    assert pki_cli(d, "init", "--site", "garage").returncode == 0
    r = pki_cli(d, "init", "--site", "garage")
    assert r.returncode == EXIT_REFUSED and "--force" in r.stderr
    assert pki_cli(d, "issue", "charger", "io7-01").returncode == 0
    r = pki_cli(d, "issue", "charger", "io7-01")
    assert r.returncode == EXIT_REFUSED and "--force" in r.stderr
    r = pki_cli(d, "revoke", "nobody")
    assert r.returncode == EXIT_REFUSED and "io7-pki show lists them" in r.stderr
    assert pki_cli(d, "issue", "operator", "x", "--role", "admin").returncode == EXIT_USAGE
    assert pki_cli(d, "issue", "operator", "x").returncode == EXIT_USAGE  # --role required
    assert pki_cli(d, "issue", "charger", "x", "--days", "0").returncode == EXIT_USAGE
    r = pki_cli(d, "issue", "charger", "x", "--san-ip", "192.168.7")
    assert r.returncode == EXIT_REFUSED and "192.168.7" in r.stderr
    r = pki_cli(tmp_path / "other", "init", "--site", "Not-A-Label")
    assert r.returncode == EXIT_REFUSED and "not one DNS label" in r.stderr
    assert not (tmp_path / "other" / "ca").exists()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    r = pki_cli(blocked / "pki", "init", "--site", "garage")
    assert r.returncode == EXIT_FOLDER and "cannot create" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_certificates_say_who_and_what_for(tmp_path: Path) -> None:
    pki = make_site(tmp_path, now=NOW)
    ca = cert_at(pki.ca_cert)
    ch = cert_at(pki.identity_folder(Kind.CHARGER, "io7-01") / "cert.pem")
    op = cert_at(pki.identity_folder(Kind.OPERATOR, "bob") / "cert.pem")
    assert identity_from_certificate(ch) == charger("garage", "io7-01")
    assert identity_from_certificate(op) == operator("garage", "bob", Role.VIEWER)
    for cert in (ca, ch, op):
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    eku = ExtendedKeyUsageOID
    assert set(ch.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        eku.SERVER_AUTH, eku.CLIENT_AUTH}
    assert list(op.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        eku.CLIENT_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    days = {c: (c.not_valid_after_utc - NOW).days for c in (ca, ch, op)}
    assert (days[ca], days[ch], days[op]) == (pkicerts.CA_DAYS, pkicerts.CHARGER_DAYS,
                                               pkicerts.OPERATOR_DAYS)
    assert pkicerts.ca_site(ca) == "garage"


def test_a_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    ca = pki.init("garage", now=NOW, days=30)
    cert = pki.issue(Kind.CHARGER, "io7-01", now=NOW)
    assert cert.not_valid_after_utc == ca.not_valid_after_utc


def test_force_replaces_an_identity_and_revokes_the_old_certificate(tmp_path: Path) -> None:
    pki = make_site(tmp_path, now=NOW)
    old = cert_at(pki.identity_folder(Kind.CHARGER, "io7-02") / "cert.pem")
    new = pki.issue(Kind.CHARGER, "io7-02", now=NOW + dt.timedelta(days=400), force=True)
    assert new.serial_number != old.serial_number
    entries, number = pki.revoked()
    assert [(e.serial, e.reason) for e in entries] == [
        (old.serial_number, x509.ReasonFlags.superseded)]
    assert number == 2  # init wrote #1
    crl = RevocationList.from_pem(pki.crl.read_bytes(), cert_at(pki.ca_cert))
    assert crl.revoked(old) and not crl.revoked(new)


def test_revoke_needs_kind_for_a_name_that_is_both(tmp_path: Path) -> None:
    pki = make_site(tmp_path, now=NOW, operators=(("io7-01", Role.VIEWER),))
    with pytest.raises(Exception, match="both a charger and an operator"):
        pki.revoke("io7-01", now=NOW)
    cert, fresh = pki.revoke("io7-01", now=NOW, kind=Kind.OPERATOR)
    assert fresh and identity_from_certificate(cert).kind is Kind.OPERATOR
    assert pki.revoke("io7-01", now=NOW, kind=Kind.OPERATOR)[1] is False
    listed = {(e.identity.kind, e.revoked) for e in pki.listing()}
    assert listed == {(Kind.CHARGER, False), (Kind.OPERATOR, True)}


def test_an_operator_takes_no_server_names(tmp_path: Path) -> None:
    pki = make_site(tmp_path, now=NOW, chargers=(), operators=())
    with pytest.raises(Exception, match="never serves"):
        pki.issue(Kind.OPERATOR, "eve", now=NOW, role=Role.VIEWER, san_ips=["10.0.0.1"])
    assert not pki.identity_folder(Kind.OPERATOR, "eve").exists()
