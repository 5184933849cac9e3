"""A frozen Sense CT kit through the master's control loop (virtual time, 1 s cycles).

A kit whose firmware hangs keeps answering with its last values: every read succeeds, so
the stale/lost timeouts never fire. On the grid incomer the reading must follow the
chargers' own draw; identical readings for longer than `frozen_after_s` while that draw
changed by more than a few amps mean the kit is frozen: treated like a lost kit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from master.allocation import CtPlacement, CtStatus, Mode
from master.config import load_master_config
from master.control import CycleResult, GroupControl
from master.ctwatch import FreezeSettings
from master.errors import ConfigError
from tests.master.support import L1, L2, L3, Rig, group, member

A, B = member("A"), member("B")
GRID = {"mode": Mode.DYNAMIC, "limit_a": 100.0, "fallback_limit_a": 40.0, "margin_a": 0.0,
        "ct_placement": CtPlacement.GRID}
FROZEN = {L1: 50.0, L2: 50.0, L3: 50.0}


def drive(rig: Rig, until_s: float, *, draw_a: float, ct: dict[object, float] | None = None,
          log: list[tuple[float, CycleResult]] | None = None) -> CycleResult:
    """One cycle per second up to `until_s`: both members report `draw_a` per line on
    every connector, the CT reads `ct` (default: the frozen values)."""
    result = None
    while rig.now < until_s:
        rig.now += 1.0
        for m in (A, B):
            rig.send_default(m, current_a=(draw_a,) * 3)
        rig.control.ct_sample(ct or FROZEN, rig.now)  # type: ignore[arg-type]
        result = rig.control.cycle(rig.now)
        if log is not None:
            log.append((rig.now, result))
    assert result is not None
    return result


def test_frozen_kit_on_the_grid_falls_back_and_recovers() -> None:
    rig = Rig.start(group(**GRID), [A, B])
    result = drive(rig, 20.0, draw_a=0.0)  # first identical sample at t = 1
    assert result.status.ct_status is CtStatus.OK
    log: list[tuple[float, CycleResult]] = []
    drive(rig, 90.0, draw_a=6.0, log=log)  # 2 chargers x 2 connectors x 6 A: +24 A/phase
    lost = [t for t, r in log if r.status.ct_status is CtStatus.LOST]
    assert lost and lost[0] == 62.0  # identical for 61 s > 60 s, draw changed by 24 A
    at_62 = dict(log)[62.0].status
    assert at_62.ct_fault.startswith(
        "CT kit frozen: identical readings for 61 s while the chargers' draw changed by 24.0 A")
    assert at_62.phases[0].limit_a == 40.0  # the fallback limit
    assert all(r.status.ct_status is CtStatus.LOST for t, r in log if t >= 62.0)
    result = drive(rig, 91.0, draw_a=6.0, ct={L1: 50.5, L2: 50.0, L3: 50.0})  # it moves
    assert (result.status.ct_status, result.status.ct_fault) == (CtStatus.OK, "")
    assert result.status.phases[0].limit_a == 100.0


def test_constant_reading_with_constant_draw_is_trusted() -> None:
    rig = Rig.start(group(**GRID), [A, B])
    result = drive(rig, 300.0, draw_a=6.0)
    assert (result.status.ct_status, result.status.ct_fault) == (CtStatus.OK, "")


def test_ct_on_other_loads_need_not_follow_the_chargers() -> None:
    rig = Rig.start(group(**{**GRID, "ct_placement": CtPlacement.OTHER_LOADS}), [A, B])
    drive(rig, 20.0, draw_a=0.0)
    result = drive(rig, 300.0, draw_a=6.0)
    assert (result.status.ct_status, result.status.ct_fault) == (CtStatus.OK, "")


def _master_toml(tmp_path: Path, ct_extra: str) -> Path:
    path = tmp_path / "master.toml"
    path.write_text(f"""
[tls]
plaintext = true
[group]
name = "garage"
mode = "dynamic"
limit_a = 100
fallback_limit_a = 40
[ct]
enabled = true
rated_a = 100
{ct_extra}
[ct.tcp]
host = "127.0.0.1"
""")
    return path


def test_config_frozen_keys_default_and_set(tmp_path: Path) -> None:
    ct = load_master_config(_master_toml(tmp_path, "")).ct
    assert ct is not None and ct.freeze == FreezeSettings(frozen_after_s=60.0,
                                                          min_draw_change_a=3.0)
    ct = load_master_config(_master_toml(
        tmp_path, "frozen_after_s = 30\nfrozen_draw_change_a = 5.5")).ct
    assert ct is not None and ct.freeze == FreezeSettings(frozen_after_s=30.0,
                                                          min_draw_change_a=5.5)


@pytest.mark.parametrize(("line", "key", "text"), [
    ("frozen_after_s = 5", "ct.frozen_after_s", "[10, 3600]"),
    ("frozen_after_s = \"1 min\"", "ct.frozen_after_s", "must be a number"),
    ("frozen_draw_change_a = 0", "ct.frozen_draw_change_a", "[1, 32]"),
    ("frozen_draw_change_a = 100", "ct.frozen_draw_change_a", "[1, 32]"),
], ids=["5 s", "as text", "0 A", "100 A"])
def test_config_frozen_keys_name_file_key_and_range(tmp_path: Path, line: str, key: str,
                                                    text: str) -> None:
    path = _master_toml(tmp_path, line)
    with pytest.raises(ConfigError) as info:
        load_master_config(path)
    assert (info.value.file, info.value.key) == (path, key)
    assert text in str(info.value)


def test_configured_settings_reach_the_loop() -> None:
    settings = FreezeSettings(frozen_after_s=20.0, min_draw_change_a=10.0)
    rig = Rig(GroupControl(group=group(**GRID), term=1, members=[A, B], now_s=0.0,
                           ct_freeze=settings))
    for m in (A, B):
        rig.control.member_connected(m, 0.0)
    drive(rig, 5.0, draw_a=0.0)
    log: list[tuple[float, CycleResult]] = []
    drive(rig, 40.0, draw_a=6.0, log=log)
    assert next(t for t, r in log if r.status.ct_status is CtStatus.LOST) == 22.0
