"""`make run`'s site certificates: a throwaway site CA under `.run/pki` (issue 11 §2).

1. Made afresh at every start with io7-pki's library (master/pki.py): site `carpark`,
   one charger certificate per car park charger, and an installer `installer` whose
   folder the run file records, so `io7ctl status` next to `make run` needs no flags.
2. A master runs on a charger (architecture: every io7 runs a master candidate), so
   each car park master serves with the certificate of the charger it would run on:
   the group's first charger.
3. Membership is closed (the default with TLS): the car park admits its chargers the
   way an installer would with `io7ctl admit ID`, written into each master's membership
   store before the master starts, so no charger is refused at start.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable
from pathlib import Path

from master.membership import MembershipStore
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
    for cid in chargers:
        pki.issue(Kind.CHARGER, cid, now=now)
    pki.issue(Kind.OPERATOR, INSTALLER, now=now, role=Role.INSTALLER)
    return pki


def installer_folder(pki: Pki) -> Path:
    return pki.identity_folder(Kind.OPERATOR, INSTALLER)


def master_tls(pki: Pki, runs_on: str) -> str:
    """The [tls] table of a master running on charger `runs_on` (rule 2)."""
    return (f'[tls]\ndir = "{pki.identity_folder(Kind.CHARGER, runs_on)}"\n'
            f'crl = "{pki.crl}"\n')


def agent_tls(pki: Pki, cid: str) -> str:
    return f'[tls]\ndir = "{pki.identity_folder(Kind.CHARGER, cid)}"\n'


def admit(state_db: Path, group: str, chargers: Iterable[str]) -> None:
    """Admit `chargers` to the closed group whose membership is `state_db` (rule 3)."""
    store = MembershipStore(state_db, group=group, closed=True)
    try:
        for cid in chargers:
            store.admit_id(cid, now_wall=dt.datetime.now(dt.UTC))
    finally:
        store.close()
