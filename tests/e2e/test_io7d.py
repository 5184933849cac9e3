"""io7d end to end (issue 13): one daemon per charger elects the group's master.

Three `io7d` processes on loopback, each with its own charger certificate (the e2e
session's site), the Raft link and AgentLink over mutual TLS. One member leads and every
agent obeys its term; kill -9 the leader: another member leads in a higher term within
seconds and every surviving agent obeys it. Never two leaders of one term.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, Proc, charger_dir, cluster, site_pki, wait_for

pytestmark = pytest.mark.e2e
IDS = ("io7-01", "io7-02", "io7-03")
TAKEOVER_BOUND_S = 30.0  # generous: a shared, loaded machine; the bench measures it

IO7_TOML = """
[charger]
id = "{cid}"
current_limit_a = 32
[connectors.1]
wiring = ["L1", "L2", "L3"]
[tls]
dir = "{tls}"
crl = "{crl}"
[master]
cycle_ms = 250
lease_cycles = 8
[group]
name = "garage"
mode = "static"
limit_a = 48
offline_strategy = "maximise"
[group.tuning]
settle_s = 0.5
ramp_up_a = 80.0
[group.members]
{members}
[sim]
evs = "plugged"
[state]
dir = "{state}"
"""


def port_pairs(n: int) -> list[int]:
    """n ports p whose p + 1 is free too (Raft listens on the next port)."""
    found: list[int] = []
    while len(found) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        if all(abs(p - q) > 1 for q in found):
            found.append(p)
    return found


def start(c: Cluster, tmp: Path) -> dict[str, Proc]:
    ports = port_pairs(len(IDS))
    members = "\n".join(f'"{cid}" = "127.0.0.1:{p}"' for cid, p in zip(IDS, ports, strict=True))
    procs = {}
    for cid in IDS:
        state = tmp / cid
        state.mkdir()
        path = tmp / f"{cid}.toml"
        path.write_text(IO7_TOML.format(cid=cid, tls=charger_dir(cid), crl=site_pki().crl,
                                        members=members, state=state))
        procs[cid] = c.spawn(cid, "-m", "master.io7d", "--config", str(path))
    return procs


def leads(p: Proc) -> list[int]:
    return [int(e["term"]) for e in p.events("leads the group: master started")]


def obeys(p: Proc, term: int) -> bool:
    """The agent's latest offer is under `term` with a valid lease."""
    offers = p.events("offer")
    return bool(offers) and offers[-1]["term"] == term and bool(offers[-1]["lease_ok"])


def test_a_killed_master_is_replaced_and_every_agent_obeys_the_new_term(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        procs = start(c, tmp_path)
        wait_for(lambda: any(leads(p) for p in procs.values()), "a member leads")
        (leader,) = [cid for cid, p in procs.items() if leads(p)]
        (term,) = leads(procs[leader])
        wait_for(lambda: all(obeys(p, term) for p in procs.values()),
                 f"every agent obeys term {term}")
        procs[leader].kill9()
        killed_at = time.monotonic()
        rest = {cid: p for cid, p in procs.items() if cid != leader}

        def new_term() -> int | None:
            terms = [t for p in rest.values() for t in leads(p) if t > term]
            return max(terms) if terms else None

        wait_for(lambda: new_term() is not None, "another member leads", TAKEOVER_BOUND_S)
        later = new_term()
        assert later is not None
        took = wait_for(lambda: all(obeys(p, later) for p in rest.values()),
                        f"the survivors obey term {later}", TAKEOVER_BOUND_S)
        print(f"takeover: {time.monotonic() - killed_at:.2f} s after the kill ({took:.2f} s "
              "after the new leader)")
        every = [t for p in procs.values() for t in leads(p)]
        assert len(every) == len(set(every)), f"two leaders of one term: {every}"
