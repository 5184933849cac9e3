"""An agent keeps the highest master term it has seen across a restart (issue 10).

The real agent (its run loop, a real gRPC channel on loopback) against the fake master of
test_link_bounds: it obeys term 7, stops, starts again from the same state folder, and
its very first Hello says 7; a master still on term 5 is refused at once, and a master
that lost its state (term 1 here) learns from that Hello which term to move above
(master/control.py rule 4, tested end to end in tests/e2e/test_master_service.py).
"""

from __future__ import annotations

from pathlib import Path

from agent.config import load_agent_config
from agent.termstore import term_file
from tests.agent.test_link_bounds import (
    AGENT_TOML,
    Script,
    eventually,
    fake_master,
    latest,
    running,
)


async def test_the_last_seen_term_survives_a_restart(tmp_path: Path) -> None:
    script = Script(failsafe_a=6.0, term=7)
    async with fake_master(script) as (address, _):
        path = tmp_path / "agent.toml"
        path.write_text(AGENT_TOML.format(address=address))
        config = load_agent_config(path)
        async with running(config):
            await eventually(lambda: latest(script).lease_ok, "an obeyed lease")
        assert script.hellos[0].last_seen_term == 0
        assert term_file(config.state_dir).read_text().strip() == "7"

        script.term, script.states = 5, []  # an older master answers the restarted agent
        async with running(config) as agent:
            await eventually(lambda: len(script.states) >= 3, "three AgentStates")
            assert script.hellos[-1].last_seen_term == 7
            assert agent.applier.last_seen_term == 7
            assert "term 5 is older than term 7" in latest(script).limits_refused_reason
            assert not any(s.lease_ok for s in script.states)


async def test_an_unreadable_term_file_starts_from_0_and_is_replaced(tmp_path: Path) -> None:
    script = Script(failsafe_a=6.0, term=3)
    async with fake_master(script) as (address, _):
        path = tmp_path / "agent.toml"
        path.write_text(AGENT_TOML.format(address=address))
        config = load_agent_config(path)
        config.state_dir.mkdir(parents=True)
        term_file(config.state_dir).write_text("garbage")
        async with running(config):
            await eventually(lambda: latest(script).lease_ok, "an obeyed lease")
        assert script.hellos[0].last_seen_term == 0
        assert term_file(config.state_dir).read_text().strip() == "3"
