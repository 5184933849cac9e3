"""The security log (hw/securitylog.py): append-only, bounded, newest-N, nothing secret."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hw.securitylog import (
    BURST,
    REFILL_S,
    SecurityEvent,
    SecurityLog,
    decode,
    encode,
    format_time,
    redact,
)

T0 = datetime(2026, 12, 1, 23, 25, 24, 123456, tzinfo=UTC)


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_time_is_utc_with_milliseconds() -> None:
    assert format_time(T0) == "2026-12-01T23:25:24.123Z"
    cet = T0.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))
    assert format_time(cet) == "2026-12-01T23:25:24.123Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 1, 1))


def test_an_entry_is_one_json_line_with_the_five_fields(tmp_path: Path) -> None:
    log = SecurityLog(tmp_path / "s.jsonl", clock=Clock())
    log.record("limit_set", who="ipv4:10.0.0.9", peer="ipv4:10.0.0.9:5123",
               detail="60 A -> 30 A\nforged line\x1b[2J")
    log.close()
    text = (tmp_path / "s.jsonl").read_text()
    assert text.count("\n") == 1  # control characters are escaped: one line
    assert lines(tmp_path / "s.jsonl") == [{
        "time_utc": "2026-12-01T23:25:24.123Z", "kind": "limit_set",
        "who": "ipv4:10.0.0.9", "peer": "ipv4:10.0.0.9:5123",
        "detail": "60 A -> 30 A\nforged line\x1b[2J"}]
    assert os.stat(tmp_path / "s.jsonl").st_mode & 0o777 == 0o600


def test_a_bad_kind_is_refused() -> None:
    for bad in ("Limit Set", "", "x" * 41, "limit-set"):
        with pytest.raises(ValueError, match="snake_case"):
            SecurityEvent(time_utc="t", kind=bad)


# name -> (text, what must not survive, what must survive)
REDACTION_CASES = {
    "password=": ("web login password=hunter2 refused", "hunter2", "web login password="),
    "json key": ('{"AuthorizationKey": "0011aabbccddeeff"} set', "0011aabb",
                 '"AuthorizationKey": '),
    "token:": ("token: eyJhbGciOi refused", "eyJhbGciOi", "refused"),
    "pem": ("key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY----- x",
            "MIIEvQIBADAN", " x"),
    "truncated pem": ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI", "MHcCAQEEI", ""),
    "long hex": ("fingerprint " + "ab12" * 16, "ab12ab12", "fingerprint "),
    "long base64": ("got " + "Q2hhcmdlcjAxU2VjcmV0S2V5Rm9yVGVzdGluZ0FuZEJ5=", "Q2hhcmdl", "got "),
    "basic auth header": ("Authorization: Basic Zm9vOmJhcg== sent", "Zm9vOmJhcg", " sent"),
}


@pytest.mark.parametrize("case", REDACTION_CASES)
def test_a_secret_looking_value_is_redacted(case: str) -> None:
    text, secret, kept = REDACTION_CASES[case]
    out = redact(text)
    assert secret not in out and "[redacted]" in out
    assert kept in out


@pytest.mark.parametrize("text", [
    "charger io7-0001 is not a member of closed group 'garage': io7ctl admit io7-0001",
    "group limit 60 A -> 30 A per phase (installed 100 A)",
    "ipv4:10.0.0.21:50312", "ipv6:[::1]:50051",
    "garage-north-building-east-charger-0001-bay-12",  # a long id of words
    "term raised 5 -> 6 by charger io7-1's Hello (last_seen_term 5)",
    "FailedToAuthenticateAtCentralSystem: the CSMS refused the credentials",
])
def test_ordinary_text_is_not_redacted(text: str) -> None:
    assert redact(text) == text


def test_redaction_applies_to_what_is_written(tmp_path: Path) -> None:
    log = SecurityLog(tmp_path / "s.jsonl", clock=Clock())
    written = log.record("config_changed", who="installer password=letmein",
                         detail='ocpp {"AuthorizationKey": "deadbeefdeadbeef"}')
    log.close()
    raw = (tmp_path / "s.jsonl").read_text()
    assert "letmein" not in raw and "deadbeef" not in raw
    assert written is not None and "letmein" not in written.who


def test_fields_are_capped(tmp_path: Path) -> None:
    line = encode(SecurityEvent(time_utc="t", kind="hello_invalid", detail="x" * 5000))
    event = decode(line)
    assert event is not None and len(event.detail) == 1000 and event.detail.endswith("…")


def test_an_existing_log_is_appended_to_never_truncated(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"time_utc": "old", "kind": "master_started"}\n')
    for n in range(2):  # two starts of the process
        log = SecurityLog(path, clock=Clock())
        log.record("master_started", detail=f"start {n}")
        log.close()
    kinds = [decode(x) for x in path.read_bytes().splitlines()]
    assert [k.detail if k else None for k in kinds] == ["", "start 0", "start 1"]


def test_rotation_keeps_one_previous_file_and_bounds_the_size(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    clock = Clock()
    log = SecurityLog(path, max_bytes=4096, clock=clock)
    for n in range(200):
        clock.advance(REFILL_S)  # stay under the flood limit
        log.record("limit_set", detail=f"entry {n:03d} " + "y" * 60)
    log.close()
    rotated = tmp_path / "s.jsonl.1"
    assert path.stat().st_size <= 4096 and rotated.stat().st_size <= 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.jsonl", "s.jsonl.1"]
    both = [decode(x) for x in rotated.read_bytes().splitlines() + path.read_bytes().splitlines()]
    numbers = [int(e.detail.split()[1]) for e in both if e is not None]
    assert numbers == list(range(numbers[0], 200))  # the newest, in order, none lost between


def test_tail_is_newest_n_oldest_first_across_the_rotation(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    clock = Clock()
    log = SecurityLog(path, max_bytes=2048, clock=clock)
    assert log.tail(5) == []
    for n in range(40):
        clock.advance(REFILL_S)
        log.record("member_admitted", detail=f"n{n}")
    assert (tmp_path / "s.jsonl.1").exists()
    assert [e.detail for e in log.tail(3)] == ["n37", "n38", "n39"]
    in_current = len(path.read_bytes().splitlines())
    got = log.tail(in_current + 2)  # reaches into the rotated file
    assert [e.detail for e in got] == [f"n{n}" for n in range(38 - in_current, 40)]
    assert log.tail(0) == []
    log.close()


def test_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    log = SecurityLog(path, clock=Clock())
    log.record("master_started")
    with path.open("ab") as f:
        f.write(b'{"time_utc": "2026-')  # a crash mid-write
    log.record("master_stopped")  # starts on the torn line: that line is lost, not this
    assert [e.kind for e in log.tail(10)] == ["master_started"]
    log.close()


def test_a_flood_is_counted_not_written(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    clock = Clock()
    log = SecurityLog(path, clock=clock)
    for n in range(BURST + 100):
        log.record("hello_not_member", who="ipv4:10.0.0.66", detail=f"id x{n}")
    log.record("limit_set", detail="another kind is not held back")
    clock.advance(REFILL_S)
    log.record("hello_not_member", detail="after the pause")
    log.close()
    kinds = [(e["kind"], e["detail"]) for e in lines(path)]
    assert len(kinds) == BURST + 3
    assert kinds[BURST] == ("limit_set", "another kind is not held back")
    assert kinds[BURST + 1] == ("events_suppressed", "100 hello_not_member events not "
                                "written (flood limit: 20 at once, then one per 10 s)")
    assert kinds[BURST + 2] == ("hello_not_member", "after the pause")


def test_close_writes_the_pending_suppressed_count(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    log = SecurityLog(path, clock=Clock())
    for _ in range(BURST + 3):
        log.record("hello_invalid")
    log.close()
    log.close()  # twice is harmless
    assert lines(path)[-1]["detail"].startswith("3 hello_invalid events not written")


def test_threads_of_one_process_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    clock = Clock()
    log = SecurityLog(path, max_bytes=64 * 1024, clock=clock)

    def write(kind: str) -> None:
        for n in range(BURST):
            log.record(kind, detail=f"{kind} {n} " + "z" * 200)

    threads = [threading.Thread(target=write, args=(f"kind_{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(lines(path)) == 8 * BURST  # each line parses: none torn or interleaved
