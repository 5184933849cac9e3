"""Session logs (master.sim.sessionlog) and placing them on a site (master.sim.replay),
without running a day: every bad input names its file, row and column; the common
shapes of back-office exports are read; sockets are given out as the README says."""

from __future__ import annotations

from datetime import date

import pytest

from master.allocation import Phase
from master.sim.replay import CHANGEOVER_S, replay, with_fuse, with_sockets
from master.sim.scenario import Scenario, ScenarioError, parse_scenario
from master.sim.sessionlog import SessionLogError, read_sessions

H = 3600.0
HEAD = "arrival,departure,energy_kwh,station,connector,phases,max_current_a\n"
OK = "2024-03-05T08:00,2024-03-05T10:00,12,,,3,16\n"


def site(*, chargers: int = 2, start: str = "06:00", end: str = "20:00",
         connectors: int = 2) -> Scenario:
    return parse_scenario({
        "site": {"fuse_a": 63, "start": start, "end": end},
        "groups": [{"name": "g", "limit_a": 63, "fallback_limit_a": 20}],
        "chargers": [{"id": f"io7-{i}", "group": "g", "connectors": connectors,
                      "wiring": ["L1", "L2", "L3"]} for i in range(1, chargers + 1)]},
        "site.toml")


@pytest.mark.parametrize(("text", "where", "allowed"), [
    pytest.param(HEAD + "half past eight,10:00,12,,,,\n", "row 2, column arrival",
                 "HH:MM", id="bad-time"),
    pytest.param(HEAD + OK + "08:00,49:30,12,,,,\n", "row 3, column departure", "48:00",
                 id="hhmm-past-48h"),
    pytest.param(HEAD + "2024-03-05T10:00,2024-03-05T09:00,12,,,,\n",
                 "row 2, column departure", "after the arrival", id="departure-before"),
    pytest.param(HEAD + OK + "08:00,10:00,-3,,,,\n", "row 3, column energy_kwh", "0..250",
                 id="negative-energy"),
    pytest.param(HEAD + "08:00,10:00,lots,,,,\n", "row 2, column energy_kwh", "kWh",
                 id="energy-not-a-number"),
    pytest.param(HEAD + "08:00,10:00,,,,,\n", "row 2, column energy_kwh", "empty",
                 id="energy-empty"),
    pytest.param(HEAD + "08:00,10:00,5,,,2,\n", "row 2, column phases", "1 or 3",
                 id="two-phases"),
    pytest.param(HEAD + "08:00,10:00,5,,,3,100\n", "row 2, column max_current_a", "6..80",
                 id="max-current"),
    pytest.param(HEAD + "08:00,10:00,5,,2,,\n", "row 2, column connector", "station",
                 id="connector-without-station"),
    pytest.param(HEAD + "08:00,10:00,5,io7-1,3,,\n", "row 2, column connector", "1..2",
                 id="connector-3"),
    pytest.param(HEAD + OK + "08:00,10:00\n", "row 3:", "header has 7", id="short-row"),
    pytest.param("arrival,departure,kwh\n08:00,10:00,5\n", "row 1:", "energy_kwh",
                 id="missing-column"),
    pytest.param("arrival,departure,energy_kwh,phase\n08:00,10:00,5,1\n",
                 "row 1, column phase", "did you mean phases", id="near-miss-column"),
    pytest.param("arrival,connectionTime,departure,energy_kwh\n", "row 1, column "
                 "connectionTime", "keep one", id="column-twice"),
    pytest.param("", "empty", "header row", id="empty-file"),
    pytest.param("\n\n", "empty", "header row", id="blank-file"),
    pytest.param(HEAD, "no sessions", "header row", id="header-only"),
    pytest.param(HEAD + "2024-03-05T08:00Z,2024-03-05T10:00Z,5,,,,\n",
                 "row 2, column arrival", "--timezone", id="offset-without-zone"),
    pytest.param("connectionTime,disconnectTime,kWhDelivered,timezone\n"
                 "\"Wed, 25 Apr 2018 11:08:04 GMT\",\"Wed, 25 Apr 2018 13:20:10 GMT\",7.9,"
                 "Mars/Olympus\n", "row 2, column timezone", "IANA", id="unknown-zone"),
    pytest.param(HEAD + OK + "2024-03-06T08:00,2024-03-06T10:00,5,,,,\n",
                 "the sessions arrive on 2 days",
                 "--day", id="several-days"),
])
def test_a_bad_log_names_the_file_row_and_column(text: str, where: str, allowed: str
                                                 ) -> None:
    with pytest.raises(SessionLogError) as err:
        read_sessions(text, "log.csv")
    message = str(err.value)
    assert message.startswith(f"log.csv: {where}"), message
    assert allowed in message, message
    assert "\n" not in message
    assert isinstance(err.value, ScenarioError)  # io7-sim exits 2, like a bad scenario


@pytest.mark.parametrize(("row", "where", "allowed"), [
    pytest.param("08:00,10:00,5,io7-9,,,", "row 3, column station", "io7-1, io7-2",
                 id="unknown-station"),
    pytest.param("09:00,11:00,5,io7-1,1,,", "row 3, column station", "row(s) 2",
                 id="socket-taken"),
    pytest.param("05:00,11:00,5,,,,", "row 3, column arrival", "06:00-20:00",
                 id="before-the-site-day"),
])
def test_a_row_the_site_cannot_take_names_its_row_and_column(row: str, where: str,
                                                             allowed: str) -> None:
    log = read_sessions(HEAD + "08:00,10:00,12,io7-1,1,,\n" + row + "\n", "log.csv")
    with pytest.raises(SessionLogError) as err:
        replay(site(), log)
    assert str(err.value).startswith(f"log.csv: {where}"), str(err.value)
    assert allowed in str(err.value)


def test_an_acn_data_export_is_read_in_the_site_local_time() -> None:
    # ACN-Data (Caltech) as its API and acnportal write sessions: RFC 1123 times in GMT,
    # the site's zone in a column, ids and nested user inputs that io7-sim ignores.
    text = ("_id,clusterID,connectionTime,disconnectTime,doneChargingTime,kWhDelivered,"
            "sessionID,siteID,spaceID,stationID,timezone,userID,userInputs\n"
            "5bc9,39,\"Wed, 25 Apr 2018 14:37:06 GMT\",\"Wed, 25 Apr 2018 23:55:34 GMT\","
            "\"Wed, 25 Apr 2018 16:05:22 GMT\",5.177,2_39_79_379,2,CA-327,2-39-79-379,"
            "America/Los_Angeles,,\n")
    log = read_sessions(text, "acn.csv")
    (r,) = log.rows
    assert log.day == date(2018, 4, 25)
    assert r.arrival_s == 7 * H + 37 * 60 + 6  # 14:37:06 GMT is 07:37:06 in Pasadena (PDT)
    assert r.departure_s == 16 * H + 55 * 60 + 34
    assert r.energy_wh == pytest.approx(5177.0)
    assert r.station == "2-39-79-379"
    assert (r.phases, r.max_current_a) == (3, 16.0)  # the defaults: an 11 kW car
    assert "sessionID" in log.ignored_columns and "doneChargingTime" in log.ignored_columns
    # the command line's zone wins over the column
    assert read_sessions(text, "acn.csv", timezone="UTC").rows[0].arrival_s == 14 * H + 37 * 60 + 6


def test_a_spreadsheet_export_with_semicolons_and_decimal_commas_is_read() -> None:
    text = ("\ufeffArrival;Departure;Energy (kWh);Station;Phases\n"
            "05.03.2024 is not used;x;1;;\n")
    with pytest.raises(SessionLogError, match="row 2, column Arrival"):
        read_sessions(text, "x.csv")
    text = ("\ufeffArrival;Departure;Energy (kWh);Station;Phases\n"
            "2024-03-05 07:30;2024-03-05 17:15:30;12,5;io7-1;1\n")
    (r,) = read_sessions(text, "x.csv").rows
    assert (r.arrival_s, r.departure_s, r.energy_wh) == (7.5 * H, 17.25 * H + 30, 12_500.0)
    assert (r.station, r.phases) == ("io7-1", 1)


def test_a_longer_log_replays_the_chosen_day_and_counts_the_rest() -> None:
    text = (HEAD + OK + "2024-03-06T07:00,2024-03-07T06:30,30,,,,\n"
            "2024-03-06T22:00,30:00,8,,,,\n")
    log = read_sessions(text, "x.csv", day=date(2024, 3, 6))
    assert [r.row for r in log.rows] == [3, 4]
    assert log.other_days == 1
    assert log.rows[0].departure_s == 24 * H + 6.5 * H  # next morning, past 24:00
    assert log.rows[1].departure_s == 30 * H  # "HH:MM" counts from the chosen day
    with pytest.raises(SessionLogError, match="no session arrives on 2024-03-09"):
        read_sessions(text, "x.csv", day=date(2024, 3, 9))


def test_sockets_are_given_in_arrival_order_and_a_car_waits_or_is_turned_away() -> None:
    rows = ["07:00,12:00,10,io7-1,2,,",  # row 2: its own socket
            "08:00,09:00,5,,,,",  # 3: the first free one, io7-1/1
            "08:10,11:00,5,,,,",  # 4: io7-2/1 (io7-1/1 is taken by row 3)
            "08:20,10:00,5,,,,",  # 5: io7-2/2
            "08:30,12:00,5,,,,",  # 6: waits for row 3 to leave at 09:00
            "08:40,09:30,5,,,,"]  # 7: the next socket frees at 10:00: turned away
    text = HEAD + "\n".join(rows) + "\n"
    done = replay(site(), read_sessions(text, "x.csv"))
    at = {p.row: (p.arrival.charger_id, p.arrival.connector_id, p.arrival.at_s, p.waited_s)
          for p in done.placed}
    assert at[2] == ("io7-1", 2, 7 * H, 0.0)
    assert at[3] == ("io7-1", 1, 8 * H, 0.0)
    assert at[4][:2] == ("io7-2", 1) and at[5][:2] == ("io7-2", 2)
    assert at[6] == ("io7-1", 1, 9 * H + CHANGEOVER_S, 0.5 * H + CHANGEOVER_S)
    assert done.turned_away == (7,)
    assert done.summary()["waited"] == 1
    # with two sockets more, nobody waits and nobody is turned away
    more = replay(with_sockets(site(), 2), read_sessions(text, "x.csv"))
    assert not more.turned_away and all(p.waited_s == 0.0 for p in more.placed)
    # --ignore-stations: every row takes the first free socket, row 2 included
    anywhere = replay(site(), read_sessions(text, "x.csv"), ignore_stations=True)
    assert {p.row: p.arrival.connector_id for p in anywhere.placed}[2] == 1


def test_a_row_with_its_station_keeps_it_and_a_free_row_works_around_it() -> None:
    rows = ["07:00,09:00,5,io7-1,1,,",  # row 2
            "09:00,10:00,5,io7-1,1,,",  # 3: exports round to the minute: plugs at 09:01
            "08:30,09:45,5,,,,"]  # 4: io7-1/2, not io7-1/1 (row 3 has it from 09:01)
    done = replay(site(chargers=1), read_sessions(HEAD + "\n".join(rows) + "\n", "x.csv"))
    at = {p.row: (p.arrival.connector_id, p.arrival.at_s, p.waited_s) for p in done.placed}
    assert at[3] == (1, 9 * H + CHANGEOVER_S, 0.0)
    assert at[4] == (2, 8.5 * H, 0.0)


def test_each_car_wants_exactly_its_row_energy_and_a_stay_is_cut_at_the_site_end() -> None:
    text = HEAD + "08:00,10:00,12.5,,,1,32\n09:00,22:00,0,,,,\n"
    done = replay(site(end="20:00"), read_sessions(text, "x.csv"))
    first, second = done.placed
    assert first.arrival.wanted_wh == pytest.approx(12_500.0)
    assert (first.arrival.ev.phases, first.arrival.ev.onboard_max_a) == (1, 32.0)
    assert second.arrival.wanted_wh == 0.0 and second.arrival.leave_s == 20 * H
    assert done.cut_at_end == (3,)


def test_a_bigger_fuse_raises_the_groups_on_it_and_caps_the_others() -> None:
    s = parse_scenario({
        "site": {"fuse_a": 63},
        "groups": [{"name": "main", "limit_a": 63, "fallback_limit_a": 40},
                   {"name": "sub", "limit_a": 32, "fallback_limit_a": 16}],
        "chargers": [{"id": "a", "group": "main"}, {"id": "b", "group": "sub"}]}, "s.toml")
    big = with_fuse(s, 80.0)
    assert big.fuse_a == (80.0, 80.0, 80.0)
    assert [g.config.limit_a for g in big.groups] == [80.0, 32.0]
    small = with_fuse(s, 25.0)
    assert [(g.config.limit_a, g.config.fallback_limit_a) for g in small.groups] == [
        (25.0, 25.0), (25.0, 16.0)]
    with pytest.raises(ScenarioError, match=r"--fuse-a 3: a fuse within 6\.\.2000 A"):
        with_fuse(s, 3.0)


def test_added_sockets_copy_the_last_charger_with_rotated_wiring() -> None:
    more = with_sockets(site(chargers=1), 3)
    added = more.chargers[1:]
    assert [(c.charger_id, c.connectors) for c in added] == [("added-1", 2), ("added-2", 1)]
    assert [c.wiring[0] for c in added] == [Phase.L2, Phase.L3]
    assert all(c.group == "g" and c.current_limit_a == 32.0 for c in added)
    with pytest.raises(ScenarioError, match="--add-sockets 0"):
        with_sockets(site(), 0)
