"""`make run`'s site certificates: a throwaway site CA under `.run/pki` (issue 11 §2).

1. Made afresh at every start with io7-pki's library (master/pki.py): site `carpark`,
   one charger certificate per car park charger, and an installer `installer` whose
   folder the run file records, so `io7ctl status` next to `make run` needs no flags.
2. Every charger's io7d serves with its own certificate (its agent, its Raft link and
   its master when elected): `master_tls` is the [tls] table of its io7.toml.
3. Membership is closed (the default with TLS); io7d admits the [group.members] of its
   config itself (master.service.Elected), so no charger is refused at start.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable
from pathlib import Path

from master.pki import Pki
from protos.identity import Kind, Role

SITE = "carpark"
INSTALLER = "installer"


def make_site(folder: Path, chargers: Iterable[str]) -> Pki:
    """A fresh site PKI in `folder` (removed first) with these chargers (rule 1)."""
    shutil.rmtree(folder, ignore_errors=True)
    now = dt.datetime.now(dt.UTC)
    pki = Pki(folder)
    pki.init(SITE, now=now)
    for cid in chargers:  # 127.0.0.1/localhost: a browser trusting ca.pem opens its UI
        pki.issue(Kind.CHARGER, cid, now=now, san_ips=("127.0.0.1",), san_dns=("localhost",))
    pki.issue(Kind.OPERATOR, INSTALLER, now=now, role=Role.INSTALLER)
    return pki


def installer_folder(pki: Pki) -> Path:
    return pki.identity_folder(Kind.OPERATOR, INSTALLER)


def master_tls(pki: Pki, cid: str) -> str:
    """The [tls] table of charger `cid`'s io7.toml: its folder and the site CRL (rule 2)."""
    return (f'[tls]\ndir = "{pki.identity_folder(Kind.CHARGER, cid)}"\n'
            f'crl = "{pki.crl}"\n')
