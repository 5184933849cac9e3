"""The example configs in deploy/ are what installers copy: each must load as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from master.config import load_master_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("scenario-*/master*.toml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_master_examples_load(path: Path) -> None:
    config = load_master_config(path)
    assert config.group.name


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("scenario-*/agent*.toml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_agent_examples_load(path: Path) -> None:
    config = load_agent_config(path)
    assert config.charger_id and config.connectors


def test_every_scenario_has_examples_and_units() -> None:
    assert {p.name for p in DEPLOY.glob("scenario-*")} == {"scenario-a", "scenario-b",
                                                            "scenario-c"}
    assert (DEPLOY / "systemd" / "io7-master.service").exists()
    assert (DEPLOY / "systemd" / "io7-agent.service").exists()
    io7d = (DEPLOY / "systemd" / "io7d.service").read_text()
    # the web UI writes io7.toml beside itself: its folder must stay writable
    assert "ExecStart=/opt/io7-cluster/.venv/bin/io7d --config /etc/io7/io7.toml" in io7d
    assert "ProtectSystem=strict" in io7d and "ReadWritePaths=/etc/io7" in io7d
