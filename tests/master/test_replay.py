"""io7-sim replay: a session log on a site, the what-ifs, and the command line.

Short logs (an hour or two of virtual time) keep these fast; the example of
deploy/sessions is replayed once for the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from master.sim.cli import main as sim_main
from master.sim.scenario import ScenarioError, parse_scenario

SITE = {"site": {"fuse_a": 63, "start": "07:00", "end": "12:00"},
        "groups": [{"name": "g", "limit_a": 63, "fallback_limit_a": 20}],
        "chargers": [{"id": "c", "group": "g"}]}


def test_a_car_cannot_arrive_on_a_socket_the_second_its_predecessor_leaves() -> None:
    # The run plugs arrivals before it unplugs departures, and the socket's machine must
    # see it empty for one step: a swap within the same second lost the first session
    # and left the second car with nothing. One second apart is the least the run needs.
    swap = [{"at": "08:00", "charger": "c", "connector": 1, "departure": "08:30"},
            {"at": "08:30", "charger": "c", "connector": 1, "departure": "09:00"}]
    with pytest.raises(ScenarioError, match="still there"):
        parse_scenario({**SITE, "arrivals": swap}, "x.toml")
    swap[1]["at"] = "08:30:01"
    assert len(parse_scenario({**SITE, "arrivals": swap}, "x.toml").arrivals) == 2


# -- replays in virtual time, through the command line --------------------------------------

EXAMPLE = Path(__file__).parents[2] / "deploy" / "sessions" / "site.toml"
SHORT_SITE = """\
name = "short"
[site]
fuse_a = 63
profile = "step"
base_a = 5
step_a = 0
start = "08:00"
end = "09:00"
[[groups]]
name = "g"
limit_a = 63
fallback_limit_a = 16
[[chargers]]
id = "io7-1"
group = "g"
"""
# row 2: an 11 kW car wanting 6 kWh (33 min alone); row 3: a 7.4 kW single-phase car
# wanting 3 kWh (25 min alone); both stay until 09:00
SHORT_LOG = """\
arrival,departure,energy_kwh,phases,max_current_a
08:00,09:00,6,3,16
08:05,09:00,3,1,32
"""
V = 230.0


@pytest.fixture
def short(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "site.toml").write_text(SHORT_SITE)
    (tmp_path / "log.csv").write_text(SHORT_LOG)
    return tmp_path / "site.toml", tmp_path / "log.csv"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert sim_main(["run", *argv, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_with_room_every_session_gets_the_energy_it_wanted(
        short: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    site, log = short
    out = _run(capsys, str(site), "--sessions", str(log))
    got = {s["row"]: (s["wanted_kwh"], s["delivered_kwh"]) for s in out["replay"]["sessions"]}
    assert got.keys() == {2, 3}
    assert got[2] == (6.0, pytest.approx(6.0, abs=0.03))
    assert got[3] == (3.0, pytest.approx(3.0, abs=0.03))
    assert out["overload_amp_seconds"] == [0, 0, 0]
    assert out["unserved_sessions"] == 0


def test_on_a_fuse_too_small_the_sessions_are_limited_and_the_fuse_holds(
        short: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    site, log = short
    out = _run(capsys, str(site), "--sessions", str(log), "--fuse-a", "16")
    sessions = out["replay"]["sessions"]
    delivered = sum(s["delivered_kwh"] for s in sessions)
    # 16 A less the building's 5 A, on every phase, for the hour
    assert delivered <= (16 - 5) * V * 3 * 1 / 1000
    assert delivered < 9.0 - 1.0  # what they wanted: 6 + 3 kWh
    assert all(s["delivered_kwh"] <= s["wanted_kwh"] + 0.01 for s in sessions)
    assert out["overload_amp_seconds"] == [0, 0, 0]


def test_the_shipped_example_replays(capsys: pytest.CaptureFixture[str]) -> None:
    # site.toml names example.csv itself (sessions_csv): no --sessions needed
    out = _run(capsys, str(EXAMPLE))
    replay = out["replay"]
    assert (replay["rows"], replay["replayed"], out["sessions"]) == (9, 8, 8)
    assert replay["turned_away_rows"] == [8]  # 09:00-09:50, no socket frees in time
    assert replay["waited"] == 3
    assert replay["cut_at_end_rows"] == [9, 10]
    assert [s["row"] for s in replay["sessions"]] == [2, 3, 4, 5, 6, 7, 9, 10]
    assert all(s["delivered_kwh"] <= s["wanted_kwh"] + 0.01 for s in replay["sessions"])
    assert sum(out["overload_amp_seconds"]) == 0


def test_the_table_says_what_the_replay_did(short: tuple[Path, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    site, log = short
    log.write_text(SHORT_LOG + "08:10,08:30,2,3,16\n")  # row 4: no socket is free for it
    assert sim_main(["run", str(site), "--sessions", str(log)]) == 0
    out = capsys.readouterr().out
    assert f"replay of {log}: 3 rows, 2 replayed; 0 waited for a socket; 1 turned away " \
           f"(row 4)" in out
    assert "got all they wanted: 2 of 2 sessions" in out


@pytest.mark.parametrize(("log", "extra", "expected"), [
    pytest.param("arrival,departure,energy_kwh\n08:00,07:00,5\n", [],
                 "row 2, column departure: not after the arrival", id="departure-before"),
    pytest.param("arrival,departure,energy_kwh,station\n08:00,09:00,5,io7-7\n", [],
                 "row 2, column station: 'io7-7' is not a charger", id="unknown-station"),
    pytest.param("", [], "empty; expected a header row", id="empty"),
    pytest.param(SHORT_LOG, ["--fuse-a", "3"], "--fuse-a 3: a fuse within 6..2000 A",
                 id="fuse-too-small"),
    pytest.param(SHORT_LOG, ["--timezone", "Atlantis/Capital"], "--timezone: "
                 "'Atlantis/Capital' is not an IANA time zone", id="unknown-zone"),
])
def test_a_bad_log_or_what_if_exits_2_with_one_line(
        short: tuple[Path, Path], capsys: pytest.CaptureFixture[str], log: str,
        extra: list[str], expected: str) -> None:
    site, path = short
    path.write_text(log)
    assert sim_main(["run", str(site), "--sessions", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert err.startswith("io7-sim: ")


def test_a_missing_log_and_a_site_with_arrivals_exit_2(
        short: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    site, log = short
    assert sim_main(["run", str(site), "--sessions", str(log) + ".gone"]) == 2
    assert f"{log}.gone: cannot read" in capsys.readouterr().err
    busy = site.parent / "busy.toml"
    busy.write_text(SHORT_SITE.replace(
        '[site]', 'arrivals = [{ at = "08:00", charger = "io7-1", connector = 1, '
                  'departure = "09:00" }]\n[site]'))
    assert sim_main(["run", str(busy), "--sessions", str(log)]) == 2
    assert "has arrivals; a site to replay sessions on gives none" in capsys.readouterr().err
