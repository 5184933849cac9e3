"""A Charger Current Limit changed live (the web UI, issue 14) reaches the master in the
agent's regular report, not through a reconnect: a real master process (offline strategy
"zero"), a real agent process charging, and a real in-process Agent whose limit is set from
32 to 10 A. Reopening the stream would count that member offline for a cycle or more, and
"zero" would then pause every connector of the group: the other charger's offers must never
drop to 0 A, and the changed charger's allocation must follow to <= 10 A."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.service import Agent
from tests.e2e.harness import Cluster, agent_toml, cluster, last_offers, wait_for

pytestmark = pytest.mark.e2e
FOLLOW_BOUND_S = 30.0  # generous: a shared, loaded machine
CHANGES = 4  # pairs of changes (10 A, 12 A) before the last one (10 A)
WIRINGS = '[connectors.1]\nwiring = ["L1", "L2", "L3"]\n' \
          '[connectors.2]\nwiring = ["L2", "L3", "L1"]\n'


@contextmanager
def agent_in_thread(tmp: Path, cid: str, master: str) -> Iterator[
        tuple[Agent, asyncio.AbstractEventLoop]]:
    """A real Agent (simulated board, EVs plugged) on its own event loop, linked to
    `master` over plaintext gRPC; stopped (safe state) on exit."""
    path = tmp / f"{cid}.toml"
    path.write_text(agent_toml(cid, master=master, connectors=WIRINGS, tls=False)
                    .replace('dir = "."', f'dir = "{tmp / cid}"'))
    (tmp / cid).mkdir()
    config = load_agent_config(path)
    loop = asyncio.new_event_loop()
    made: list[Agent] = []
    stop: list[asyncio.Event] = []
    ready = threading.Event()

    async def main() -> None:
        stop.append(asyncio.Event())
        made.append(Agent(config))
        ready.set()
        await made[0].run(stop[0])

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the agent did not start"
    try:
        yield made[0], loop
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(15)
        loop.close()


def _allocated_a(c: Cluster, address: str, cid: str) -> float:
    """The master's allocation for `cid`'s connectors together, A per line."""
    for m in c.status(address)["members"]:
        if m["charger_id"] == cid:
            return float(sum(conn.get("allocated_a", 0.0) for conn in m["connectors"]))
    return 99.0


def test_a_live_charger_limit_change_pauses_nobody(tmp_path: Path) -> None:
    with cluster(tmp_path, tls=False) as c:
        _, address = c.master(limit_a=48, strategy="zero")
        other = c.agent("io7-2", master=address)
        with agent_in_thread(tmp_path, "io7-1", address) as (agent, loop):
            wait_for(lambda: len(last_offers(other)) == 2 and all(
                e["current_a"] >= 6.0 for e in last_offers(other).values()),
                "io7-2 charges on both sockets", FOLLOW_BOUND_S)
            wait_for(lambda: _allocated_a(c, address, "io7-1") > 10.0,
                     "the master allocates io7-1 more than 10 A", FOLLOW_BOUND_S)
            before = len(other.events("offer"))

            # A stream reopened for each change would leave the member without a report
            # for up to a step (250 ms), while cycles run every 250 ms: a few changes
            # make sure a cycle falls in such a gap.
            for amps in (*[10.0, 12.0] * CHANGES, 10.0):
                loop.call_soon_threadsafe(agent.set_charger_limit, amps)
                time.sleep(0.37)
            took = wait_for(lambda: _allocated_a(c, address, "io7-1") <= 10.0,
                            "the master's allocation for io7-1 follows to <= 10 A",
                            FOLLOW_BOUND_S)
            print(f"allocation <= 10 A {took:.2f} s after the last change + 0.37 s")
            time.sleep(1.5)  # a few cycles (250 ms) more
            assert _allocated_a(c, address, "io7-1") <= 10.0
            after = other.events("offer")[before:]
            assert all(e["current_a"] > 0.0 for e in after), after
            member = next(m for m in c.status(address)["members"]
                          if m["charger_id"] == "io7-1")
            assert member["online"], member
