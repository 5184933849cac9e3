"""master.web.tomlwrite: comment-preserving edits, atomic and durable writes."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from master.web.tomlwrite import edited, write_atomic

TEXT = """\
# io7-01 on the garage wall (installed 2026-03-02)
[charger]
id = "io7-01"
current_limit_a = 32   # manual 6.3: the supply cable's rating

# both sockets on all three phases
[connectors.1]
wiring = ["L1", "L2", "L3"]

[ocpp]
enabled = false
url = "ws://csms.example/ocpp"  # the CPO's test system
"""


def test_an_edit_keeps_every_comment_and_changes_only_its_key() -> None:
    out = edited(TEXT, {"charger.current_limit_a": 10})
    assert out == TEXT.replace("current_limit_a = 32", "current_limit_a = 10")


def test_a_missing_table_is_created_and_none_removes_a_key() -> None:
    out = edited(TEXT, {"ocpp.uk_default.max_random_delay_s": 900,
                        "ocpp.url": None, "connectors.2.wiring": ["L2"]})
    data = tomllib.loads(out)
    assert data["ocpp"] == {"enabled": False, "uk_default": {"max_random_delay_s": 900}}
    assert data["connectors"]["2"] == {"wiring": ["L2"]}
    assert "# io7-01 on the garage wall" in out and "# both sockets" in out
    assert edited(TEXT, {"ocpp.uk_default.tz": None}) == TEXT  # nothing to remove


def test_write_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "io7.toml"
    path.write_text(TEXT)
    path.chmod(0o600)
    write_atomic(path, edited(TEXT, {"charger.current_limit_a": 10}))
    assert tomllib.loads(path.read_text())["charger"]["current_limit_a"] == 10
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["io7.toml"]  # no temporary file left


def test_a_crash_before_the_rename_leaves_the_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "io7.toml"
    path.write_text(TEXT)
    seen: list[str] = []

    def crash(src: str, dst: str) -> None:
        seen.append(Path(src).read_text())  # the new text was complete on disk
        raise OSError("power cut")

    with pytest.raises(OSError, match="power cut"):
        write_atomic(path, "charger = 1\n", replace=crash)
    assert seen == ["charger = 1\n"]
    assert path.read_text() == TEXT
    assert sorted(os.listdir(tmp_path)) == ["io7.toml"]


def test_a_symlinked_config_is_written_through_to_its_target(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "io7.toml"
    real.parent.mkdir()
    real.write_text(TEXT)
    link = tmp_path / "io7.toml"
    link.symlink_to(real)
    write_atomic(link, "x = 1\n")
    assert link.is_symlink() and real.read_text() == "x = 1\n"


@pytest.mark.parametrize(("before", "after"), [(0o644, 0o600), (0o600, 0o600),
                                               (0o400, 0o400), (0o750, 0o700)])
def test_a_private_write_keeps_or_tightens_to_owner_only(tmp_path: Path, before: int,
                                                         after: int) -> None:
    path = tmp_path / "io7.toml"
    path.write_text("a = 1\n")
    path.chmod(before)
    assert write_atomic(path, "a = 2\n", private=True) == before
    assert stat.S_IMODE(path.stat().st_mode) == after and path.read_text() == "a = 2\n"
