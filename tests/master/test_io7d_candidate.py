"""master.io7d.Candidate: a master that fails is retried after a pause, not every tick."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import pytest

import master.service
from master import io7d
from master.election.raft import ElectionView
from master.errors import ConfigError
from master.io7dconfig import load_io7_config

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "io7d" / "io7-01.toml"
LEADING = ElectionView(member_id="io7-01", term=4, leader_id="io7-01", leading=True,
                       valid_for_s=2.5)


class Raft:
    """Only what Candidate calls on GroupRaft: the lease and transferLeadership."""

    def __init__(self) -> None:
        self.transfers = 0
        self.lease = self

    def valid_for_s(self, now_s: float) -> float:
        return 2.5

    def transferLeadership(self) -> None:
        self.transfers += 1


async def test_a_failing_master_is_retried_after_a_pause_then_handed_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    starts: list[int | None] = []

    async def failing_serve(config: Any, *, stop: asyncio.Event, elected: Any) -> None:
        starts.append(None if elected is None else elected.term)
        raise ConfigError(file=EXAMPLE, key="group.members.io7-01", problem="port taken")

    monkeypatch.setattr(master.service, "serve", failing_serve)  # io7d imports it at the lead
    raft = Raft()
    candidate = io7d.Candidate(load_io7_config(EXAMPLE), raft)  # type: ignore[arg-type]
    now = 0.0
    for _ in range(40):  # 2 s of 50 ms ticks
        candidate.follow(LEADING, now)
        await asyncio.sleep(0)
        now += 0.05
    assert starts == [4]  # not 40 starts: the retry waits RETRY_S
    assert candidate.failures == 1
    for _ in range(3):
        now += io7d.Candidate.RETRY_S + 0.1
        candidate.follow(LEADING, now)
        await asyncio.sleep(0)
        candidate.follow(LEADING, now + 0.05)
    assert len(starts) == 4 and candidate.failures == io7d.Candidate.HAND_OVER_AFTER + 1
    assert raft.transfers >= 1  # it holds the lead without serving it: hand it over
    await candidate.stop()


async def test_a_member_that_cannot_import_its_master_hands_the_lead_over(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Leading without a master to serve (a broken install, no memory left): counted as a
    failed master, so the lead goes to a member that can serve after HAND_OVER_AFTER."""
    real = importlib.import_module

    def broken(name: str, package: str | None = None) -> Any:
        if name == "master.service":
            raise MemoryError("no memory for the master's modules")
        return real(name, package)

    starts: list[int | None] = []

    async def serve(config: Any, *, stop: asyncio.Event, elected: Any) -> None:
        starts.append(None if elected is None else elected.term)
        await stop.wait()

    monkeypatch.setattr(master.service, "serve", serve)  # loaded here: only io7d's fails
    monkeypatch.setattr(importlib, "import_module", broken)
    raft = Raft()
    candidate = io7d.Candidate(load_io7_config(EXAMPLE), raft)  # type: ignore[arg-type]
    now = 0.0
    for _ in range(io7d.Candidate.HAND_OVER_AFTER):
        for _ in range(40):  # the import runs in a thread: give it ticks to fail
            candidate.follow(LEADING, now)
            await asyncio.sleep(0.001)
            now += 0.05
        now += io7d.Candidate.RETRY_S
    assert candidate.task is None and starts == []  # never served
    assert candidate.failures == io7d.Candidate.HAND_OVER_AFTER
    assert raft.transfers >= 1
    await candidate.stop()
