"""A throwaway site PKI for tests, made with io7-pki's library (master/pki.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from master.pki import Pki
from protos.identity import Kind, Role

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def make_site(folder: Path, site: str = "garage", *, now: dt.datetime | None = None,
              chargers: tuple[str, ...] = ("io7-01", "io7-02"),
              operators: tuple[tuple[str, Role], ...] = (("alice", Role.INSTALLER),
                                                          ("bob", Role.VIEWER)),
              ) -> Pki:
    """A site CA with these chargers and operators issued (`now`: the wall clock)."""
    when = now or dt.datetime.now(dt.UTC)
    pki = Pki(folder)
    pki.init(site, now=when)
    for c in chargers:
        pki.issue(Kind.CHARGER, c, now=when)
    for name, role in operators:
        pki.issue(Kind.OPERATOR, name, now=when, role=role)
    return pki
