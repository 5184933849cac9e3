"""protos/tls.py's file checks and protos/revocation.py's CRL file, with io7-pki's files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from master.pki import Pki
from protos.identity import Kind, charger
from protos.revocation import CrlFile, PeerRefused, RevocationError, authenticate_peer
from protos.tls import TlsError, TlsFiles, load_tls, validity_problem
from tests.tlssupport import NOW, make_site


@pytest.fixture
def site(tmp_path: Path) -> Pki:
    return make_site(tmp_path / "site", now=NOW)


def charger_files(site: Pki, name: str = "io7-01") -> TlsFiles:
    return TlsFiles.in_folder(site.identity_folder(Kind.CHARGER, name))


def test_good_files_load_with_their_identity(site: Pki) -> None:
    m = load_tls(charger_files(site))
    assert m.identity == charger("garage", "io7-01")


def test_file_problems_are_one_line_saying_what_to_do(site: Pki, tmp_path: Path) -> None:
    good = charger_files(site)
    other = charger_files(site, "io7-02")
    rogue = charger_files(make_site(tmp_path / "rogue", now=NOW))
    cases = {
        "missing": (TlsFiles(ca=good.ca, cert=tmp_path / "nope.pem", key=good.key),
                    "the certificate is missing: run `io7-pki issue charger ID`"),
        "key of another charger": (TlsFiles(ca=good.ca, cert=good.cert, key=other.key),
                                   "is not the key of"),
        "certificate of another CA": (TlsFiles(ca=good.ca, cert=rogue.cert, key=rogue.key),
                                      "is not signed by the CA in"),
        "not PEM": (TlsFiles(ca=good.key, cert=good.cert, key=good.key),
                    "the site CA certificate is not a PEM certificate"),
    }
    for name, (files, message) in cases.items():
        with pytest.raises(TlsError) as err:
            load_tls(files)
        assert message in str(err.value), name
        assert "\n" not in str(err.value), name
        assert "PRIVATE" not in str(err.value), name


def test_a_key_readable_by_others_is_refused(site: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(site.identity_folder(Kind.CHARGER, "io7-01"), folder)
    os.chmod(folder / "key.pem", 0o644)
    with pytest.raises(TlsError, match=r"readable by others \(mode 644\): chmod 600"):
        load_tls(TlsFiles.in_folder(folder))


def test_validity_problem_names_an_expired_or_future_certificate(site: Pki) -> None:
    cert = load_tls(charger_files(site)).cert
    assert validity_problem(cert, NOW) is None
    assert "set the time" in (validity_problem(cert, dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
                              or "")
    assert "expired on 2036" in (validity_problem(cert, NOW + dt.timedelta(days=4000)) or "")


def test_crl_file_reloads_on_change_and_keeps_the_last_good_one(site: Pki,
                                                                 tmp_path: Path) -> None:
    m = load_tls(charger_files(site, "io7-02"))
    crl = CrlFile(site.crl, m.ca)
    ctx = {"x509_pem_cert": [m.cert_pem]}
    assert authenticate_peer(ctx, site="garage", crl=crl.current()) == m.identity
    site.revoke("io7-02", now=NOW)
    with pytest.raises(PeerRefused, match=r"charger/io7-02: certificate \w+ is revoked"):
        authenticate_peer(ctx, site="garage", crl=crl.current())
    good = site.crl.read_bytes()
    site.crl.write_bytes(b"garbage")  # a half-copied file: the revocation stays in force
    assert crl.current().revoked(m.cert) and "not a PEM CRL" in (crl.problem or "")
    rogue = make_site(tmp_path / "rogue", now=NOW)  # another site's CRL
    shutil.copy(rogue.crl, site.crl)
    assert crl.current().revoked(m.cert) and "not signed by this site's CA" in (crl.problem or "")
    site.crl.write_bytes(good)
    assert crl.current().revoked(m.cert) and crl.problem is None


def test_an_older_crl_does_not_replace_a_newer_one(site: Pki) -> None:
    ca = load_tls(charger_files(site)).ca
    old = site.crl.read_bytes()
    site.revoke("alice", now=NOW)
    crl = CrlFile(site.crl, ca)
    revoked = crl.current().serials
    site.crl.write_bytes(old)  # replayed: would un-revoke alice
    assert crl.current().serials == revoked and "older than" in (crl.problem or "")


def test_a_missing_crl_stops_the_start(tmp_path: Path, site: Pki) -> None:
    ca = load_tls(charger_files(site)).ca
    with pytest.raises(RevocationError, match=r"cannot read the CRL .*io7-pki init makes it"):
        CrlFile(tmp_path / "none.pem", ca)


def test_another_sites_identity_is_refused(tmp_path: Path) -> None:
    other = make_site(tmp_path / "other", "other", now=NOW)
    m = load_tls(charger_files(other))
    crl = CrlFile(other.crl, m.ca)
    with pytest.raises(PeerRefused, match="belongs to site 'other', not 'garage'"):
        authenticate_peer({"x509_pem_cert": [m.cert_pem]}, site="garage", crl=crl.current())
