"""The master's side of the security log (master/audit.py) and how io7ctl prints it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from hw.securitylog import SecurityLog
from master import audit
from master.ctl import render_security_log
from protos.io7.cluster.v1 import cluster_pb2 as pb


@dataclass
class Context:
    address: str

    def peer(self) -> str:
        return self.address


@pytest.mark.parametrize(("peer", "who"), [
    ("ipv4:10.0.0.21:50312", "ipv4:10.0.0.21"),
    ("ipv6:[fe80::1%eth0]:50051", "ipv6:[fe80::1%eth0]"),
    ("unix:/run/io7.sock", "unix:/run/io7.sock"),
])
def test_who_is_the_peers_host_until_tls_identities(peer: str, who: str) -> None:
    assert audit.who(Context(peer)) == who
    assert audit.who(None) == ""


def test_the_log_lives_beside_the_state_db() -> None:
    assert audit.security_log_path(Path("/var/lib/io7/master.sqlite3")) == Path(
        "/var/lib/io7/master.sqlite3.security.jsonl")


def test_a_failed_write_never_raises(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    log = SecurityLog(folder / "s.jsonl", max_bytes=1024)
    log.close()  # the file is closed: every write fails with OSError (EBADF)
    audit.record(log, audit.Kind.LIMIT_SET, Context("ipv4:10.0.0.9:1"), "60 A -> 30 A")


def test_newest_serves_the_default_and_the_cap(tmp_path: Path) -> None:
    log = SecurityLog(tmp_path / "s.jsonl")
    for n in range(3):
        audit.record(log, audit.Kind.MEMBER_ADMITTED, None, f"n{n}")
    assert [e.detail for e in audit.newest(log, 0).events] == ["n0", "n1", "n2"]
    assert [e.detail for e in audit.newest(log, 2).events] == ["n1", "n2"]
    log.close()


def test_io7ctl_escapes_what_the_log_holds() -> None:
    forged = pb.GetSecurityLogResponse(events=[pb.SecurityEvent(
        time_utc="2026-12-01T23:25:24.123Z", kind="hello_invalid", who="ipv4:10.0.0.66",
        peer="ipv4:10.0.0.66:4000", detail="io7-1\n\x1b[2Kio7-2 admitted")])
    text = render_security_log(forged)
    assert text == ("2026-12-01T23:25:24.123Z  hello_invalid      ipv4:10.0.0.66  "
                    "io7-1\\n\\x1b[2Kio7-2 admitted  (peer ipv4:10.0.0.66:4000)")
    assert render_security_log(pb.GetSecurityLogResponse()) == "the security log is empty"
