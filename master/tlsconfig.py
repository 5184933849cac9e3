"""The master's [tls] table and the files it names, loaded at start (issue 11 §2).

    [tls]                         # required: one of the two forms
    dir = "/etc/io7/tls"          # this charger's folder from io7-pki (chargers/ID/):
                                  # ca.pem, cert.pem, key.pem (0600)
    crl = "/etc/io7/tls/crl.pem"  # default: crl.pem in `dir` (deploy/PKI.md copies the
                                  # PKI folder's crl.pem there); reloaded when it changes
    # or, for a test bench only:
    plaintext = true              # no TLS: anyone on the LAN may join and administer

1. The master runs on a charger and serves with that charger's certificate: it carries
   the site's server name every client verifies (protos/tls.py rule 2). An operator's
   certificate cannot serve and is refused here in one line.
2. No [tls] at all is an error that says what to do: there is no silent plaintext.
   `plaintext = true` is the only way to run without TLS; the master warns at every
   start and writes it to the security log (master.service).
3. Files are read and cross-checked when the master starts (`load_server_tls`), not when
   the config is parsed, so an example config loads on a machine without certificates;
   any problem is one ConfigError naming the key (tls.dir or tls.crl) and the file.
4. The CRL must exist at start: a master that cannot tell revoked certificates would
   let a stolen charger in. A CRL that turns bad later keeps the last good one in force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from hw.tomltable import TomlTable
from master.errors import ConfigError
from protos.identity import Kind
from protos.revocation import CrlFile, RevocationError
from protos.tls import TlsError, TlsFiles, TlsMaterial, load_tls, validity_problem

PLAINTEXT_WARNING = ("[tls] plaintext = true: gRPC without TLS, so any host on the LAN may "
                     "join this group, read it and change its limit; for tests and "
                     "development only: run `io7-pki issue charger ID` and set [tls] dir")
_HOW = ("run `io7-pki issue charger ID`, copy chargers/ID/ and crl.pem to this charger and "
        "set [tls] dir = \"/etc/io7/tls\" (deploy/PKI.md), or plaintext = true for a test "
        "bench")


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """Where the master's certificate folder and the site CRL are."""

    dir: Path
    crl: Path


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The loaded files: what the server presents and what it checks peers against."""

    material: TlsMaterial
    crl: CrlFile

    @property
    def site(self) -> str:
        return self.material.site


def read_tls(t: TomlTable | None, root: TomlTable) -> TlsSettings | None:
    """[tls] as settings; None means plaintext (rule 2). Raises ConfigError."""
    if t is None:
        raise root.error("tls", f"is required: {_HOW}")
    if t.boolean("plaintext", False):
        extra = sorted(set(t.data) & {"dir", "crl"})
        if extra:
            raise t.error(extra[0], "plaintext = true turns TLS off: remove plaintext, or "
                          "dir and crl")
        t.done()
        return None
    if "dir" not in t.data:
        raise t.error("dir", f"is required: {_HOW}")
    folder = _path(t, "dir", t.string("dir"))
    crl = _path(t, "crl", t.string("crl", str(folder / "crl.pem")))
    t.done()
    return TlsSettings(dir=folder, crl=crl)


def _path(t: TomlTable, name: str, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else t.file.parent / path


def load_server_tls(settings: TlsSettings, *, file: Path,
                    now: dt.datetime) -> tuple[ServerTls, str | None]:
    """Read and check the files (rules 1, 3, 4); returns them and a warning when the
    certificate is not valid at `now` (wall clock: the handshakes will fail). Raises
    ConfigError."""
    try:
        material = load_tls(TlsFiles.in_folder(settings.dir))
    except TlsError as err:
        raise ConfigError(file=file, key="tls.dir", problem=str(err)) from None
    if material.identity.kind is not Kind.CHARGER:
        raise ConfigError(file=file, key="tls.dir", problem=f"{settings.dir} holds "
                          f"{material.identity}, an operator's certificate: the master "
                          "serves with its charger's (io7-pki issue charger ID)")
    try:
        crl = CrlFile(settings.crl, material.ca)
    except RevocationError as err:
        raise ConfigError(file=file, key="tls.crl", problem=str(err)) from None
    return ServerTls(material, crl), validity_problem(material.cert, now)
